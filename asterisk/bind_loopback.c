/*
 * corecall lab: LD_PRELOAD shim that keeps the lab's Asterisk on loopback.
 *
 * Any bind() to the wildcard address (0.0.0.0 or ::) is turned into a bind() to loopback
 * (127.0.0.1 or ::1). Asterisk's own listeners are already configured on loopback; what this
 * catches is pjproject's DNS resolver, which always binds a UDP socket to 0.0.0.0:0 and [::]:0
 * whenever /etc/resolv.conf yields a nameserver (glibc always yields one), and any RTP socket
 * a future change might open on the wildcard address.
 *
 * Built by the lab (corecall_lab) into the lab chroot (gcc -shared -fPIC); used only by the lab.
 */
#define _GNU_SOURCE
#include <dlfcn.h>
#include <netinet/in.h>
#include <string.h>
#include <sys/socket.h>

typedef int (*bind_fn)(int, const struct sockaddr *, socklen_t);

int bind(int fd, const struct sockaddr *addr, socklen_t len)
{
	static bind_fn real_bind;

	if (!real_bind) {
		real_bind = (bind_fn) dlsym(RTLD_NEXT, "bind");
	}
	if (addr && addr->sa_family == AF_INET && len >= sizeof(struct sockaddr_in)) {
		struct sockaddr_in sin;

		memcpy(&sin, addr, sizeof(sin));
		if (sin.sin_addr.s_addr == htonl(INADDR_ANY)) {
			sin.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
			return real_bind(fd, (const struct sockaddr *) &sin, sizeof(sin));
		}
	} else if (addr && addr->sa_family == AF_INET6 && len >= sizeof(struct sockaddr_in6)) {
		struct sockaddr_in6 sin6;

		memcpy(&sin6, addr, sizeof(sin6));
		if (IN6_IS_ADDR_UNSPECIFIED(&sin6.sin6_addr)) {
			sin6.sin6_addr = in6addr_loopback;
			return real_bind(fd, (const struct sockaddr *) &sin6, sizeof(sin6));
		}
	}
	return real_bind(fd, addr, len);
}

"""The lab's carriers hold under load: a retransmitted INVITE is answered again.

On a busy machine Asterisk may not see the carrier's answer within SIP's T1 (500 ms) and
sends the INVITE again. sipp used to abort the call on that ("unexpected message"), so the
leg stayed up in Asterisk with nobody to hang it up: a benchmark call that never ended.
Here the carrier gets the same INVITE twice, as raw SIP over UDP, and must answer both,
then take the ACK and end the call itself with a BYE after 1 s, as its rules say.
"""

from __future__ import annotations

import socket
import time
import uuid

import pytest

pytestmark = pytest.mark.lab


def _invite(carrier: tuple[str, int], local: tuple[str, int], user: str, call_id: str) -> bytes:
    sdp = (
        "v=0\r\no=test 1 1 IN IP4 127.0.0.1\r\ns=-\r\nc=IN IP4 127.0.0.1\r\nt=0 0\r\n"
        "m=audio 40000 RTP/AVP 0\r\na=rtpmap:0 PCMU/8000\r\n"
    )
    host, port = carrier
    return (
        f"INVITE sip:{user}@{host}:{port} SIP/2.0\r\n"
        f"Via: SIP/2.0/UDP {local[0]}:{local[1]};branch=z9hG4bK{call_id[:12]}\r\n"
        f"From: <sip:+12125550100@{local[0]}>;tag=t{call_id[:8]}\r\n"
        f"To: <sip:{user}@{host}>\r\n"
        f"Call-ID: {call_id}\r\nCSeq: 1 INVITE\r\n"
        f"Contact: <sip:+12125550100@{local[0]}:{local[1]}>\r\nMax-Forwards: 70\r\n"
        f"Content-Type: application/sdp\r\nContent-Length: {len(sdp)}\r\n\r\n{sdp}"
    ).encode()


def _receive(sock: socket.socket, until: float) -> list[str]:
    got = []
    while time.monotonic() < until:
        sock.settimeout(max(0.01, until - time.monotonic()))
        try:
            data, _ = sock.recvfrom(65535)
        except TimeoutError:
            break
        got.append(data.decode(errors="replace"))
    return got


@pytest.mark.parametrize("user", ["+13125551000", "+12122000999"], ids=["answers", "holds"])
def test_a_retransmitted_invite_is_answered_again(lab, user):
    host, port = lab.carriers["corecall-main"]
    sock = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    sock.bind(("127.0.0.1", 0))
    local = sock.getsockname()
    call_id = uuid.uuid4().hex
    try:
        invite = _invite((host, port), local, user, call_id)
        sock.sendto(invite, (host, port))
        first = _receive(sock, time.monotonic() + 0.3)
        sock.sendto(invite, (host, port))  # as if our answer had not arrived in time
        second = _receive(sock, time.monotonic() + 0.3)
        oks = [m for m in first + second if m.startswith("SIP/2.0 200")]
        assert len(oks) >= 2, f"the retransmitted INVITE was not answered: {first + second}"
        assert any(m.startswith("SIP/2.0 200") for m in second)
        to = next(line for line in oks[-1].split("\r\n") if line.startswith("To:"))
        ack = (
            f"ACK sip:{user}@{host}:{port} SIP/2.0\r\n"
            f"Via: SIP/2.0/UDP {local[0]}:{local[1]};branch=z9hG4bKack{call_id[:8]}\r\n"
            f"From: <sip:+12125550100@{local[0]}>;tag=t{call_id[:8]}\r\n{to}\r\n"
            f"Call-ID: {call_id}\r\nCSeq: 1 ACK\r\nMax-Forwards: 70\r\nContent-Length: 0\r\n\r\n"
        ).encode()
        sock.sendto(ack, (host, port))
        later = _receive(sock, time.monotonic() + 2.5)
        byes = [m for m in later if m.startswith("BYE ")]
        if user.endswith("0999"):
            assert not byes, "a holding carrier must wait for our BYE"
        else:
            assert byes, f"the carrier did not end the call after 1 s: {later}"
    finally:
        sock.close()

"""Schemathesis hooks for tests/schemathesis/run.sh.

`POST /api/v1/inbound/email` takes a raw mail (`message/rfc822`), a media
type schemathesis cannot serialize on its own: generated values are sent as
the body of a minimal mail, bytes as they are.
"""

import schemathesis


@schemathesis.serializer("message/rfc822")
def rfc822(ctx, value):
    if value is None:
        return None
    if isinstance(value, bytes):
        return value
    body = str(value).replace("\r\n", "\n").replace("\n", "\r\n")
    return (
        "From: fuzz@example.org\r\n"
        "To: t1.1.0000@reply.example.org\r\n"
        "Subject: schemathesis\r\n"
        "\r\n" + body
    ).encode("utf-8", "surrogatepass")

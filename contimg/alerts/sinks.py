"""Sending one VOEvent to one sink. Each function returns what to record as the delivery's detail, raises
``DeliveryFailed`` for a failure worth retrying, and ``DeliveryRejected`` when the sink refuses the event
for good.

Repeats are harmless at every sink, which is what makes a retry after a crash safe: the directory sink
writes the same bytes to the same file name; the webhook sends the event's IVORN as ``Idempotency-Key``
so the receiver can drop a copy it already has; a broker drops an IVORN it has already seen.
"""

from __future__ import annotations

import os
import re
import socket
import struct
import tempfile
import urllib.error
import urllib.request
from pathlib import Path

from lxml import etree

from contimg.alerts.config import BrokerSink, DirectorySink, Sink, WebhookSink

# Statuses that say "later", not "never".
RETRYABLE_HTTP = {408, 425, 429}
# How a broker (Comet, for one) says it has this IVORN already.
ALREADY_SEEN = re.compile(r"previously seen|already seen|duplicate", re.IGNORECASE)
# A VOEvent Transport Protocol reply is small; refuse anything absurd.
MAX_REPLY_BYTES = 1 << 20


class DeliveryFailed(Exception):
    """The sink could not take the event now; a retry may succeed."""


class DeliveryRejected(Exception):
    """The sink refused the event; retrying the same bytes will not help."""


def deliver(sink: Sink, ivorn: str, document: str) -> str:
    """Send ``document`` to ``sink``; returns the detail to record."""
    if isinstance(sink, DirectorySink):
        return write_file(sink, ivorn, document)
    if isinstance(sink, WebhookSink):
        return post(sink, ivorn, document)
    return send_to_broker(sink, ivorn, document)


def file_name(ivorn: str) -> str:
    """A file name unique to the IVORN: ``dsa110.caltech.edu_contimg_alert-42.xml``."""
    return re.sub(r"[^A-Za-z0-9._-]+", "_", ivorn.removeprefix("ivo://")) + ".xml"


def write_file(sink: DirectorySink, ivorn: str, document: str) -> str:
    """Write the event to ``<path>/<file_name>`` atomically: readers see the whole file or none."""
    try:
        sink.path.mkdir(parents=True, exist_ok=True)
        target = sink.path / file_name(ivorn)
        fd, temporary = tempfile.mkstemp(dir=sink.path, prefix=f".{target.name}.", suffix=".tmp")
        try:
            with os.fdopen(fd, "wb") as handle:
                handle.write(document.encode())
                handle.flush()
                os.fsync(handle.fileno())
            os.replace(temporary, target)
        except BaseException:
            Path(temporary).unlink(missing_ok=True)
            raise
        directory = os.open(sink.path, os.O_RDONLY)
        try:
            os.fsync(directory)  # the rename itself survives a power cut
        finally:
            os.close(directory)
    except OSError as exc:
        raise DeliveryFailed(f"cannot write to {sink.path}: {exc.strerror or exc}") from exc
    return str(target)


def post(sink: WebhookSink, ivorn: str, document: str) -> str:
    """POST the event: 2xx is delivered; 408, 425, 429, 5xx and network errors are retried; any other
    4xx is rejected."""
    request = urllib.request.Request(
        str(sink.url),
        data=document.encode(),
        method="POST",
        headers={
            **sink.headers,
            "Content-Type": "application/xml; charset=utf-8",
            "Idempotency-Key": ivorn,
            "X-VOEvent-IVORN": ivorn,
        },
    )
    try:
        with urllib.request.urlopen(request, timeout=sink.timeout_s) as response:
            return f"HTTP {response.status} from {sink.url}"
    except urllib.error.HTTPError as exc:
        message = f"HTTP {exc.code} from {sink.url}: {exc.reason}"
        if exc.code in RETRYABLE_HTTP or exc.code >= 500:
            raise DeliveryFailed(message) from exc
        raise DeliveryRejected(message) from exc
    except (urllib.error.URLError, OSError) as exc:
        reason = getattr(exc, "reason", exc)
        raise DeliveryFailed(f"cannot reach {sink.url}: {reason}") from exc


def send_to_broker(sink: BrokerSink, ivorn: str, document: str) -> str:
    """Send the event as an author over the VOEvent Transport Protocol: a 4-byte big-endian length and
    the document; the broker answers with a Transport message whose role is ack or nak."""
    where = f"{sink.host}:{sink.port}"
    payload = document.encode()
    try:
        with socket.create_connection((sink.host, sink.port), timeout=sink.timeout_s) as conn:
            conn.sendall(struct.pack("!I", len(payload)) + payload)
            (size,) = struct.unpack("!I", _receive(conn, 4))
            if size > MAX_REPLY_BYTES:
                raise DeliveryFailed(f"broker {where} replied with {size} bytes; not a Transport message")
            reply = _receive(conn, size)
    except OSError as exc:
        raise DeliveryFailed(f"cannot send to broker {where}: {exc.strerror or exc}") from exc
    try:
        transport = etree.fromstring(reply)
    except etree.XMLSyntaxError as exc:
        raise DeliveryFailed(f"broker {where} replied with something that is not XML: {exc}") from exc
    role = transport.get("role")
    if etree.QName(transport).localname != "Transport" or role not in ("ack", "nak"):
        raise DeliveryFailed(f"broker {where} did not acknowledge (reply role {role!r})")
    if role == "nak":
        reason = transport.findtext(".//Result") or "no reason given"
        if ALREADY_SEEN.search(reason):
            # Our own earlier send, taken but not recorded before a crash: delivered, not refused.
            return f"broker {where} already had it ({reason})"
        raise DeliveryRejected(f"broker {where} refused {ivorn}: {reason}")
    return f"ack from broker {where}"


def _receive(conn: socket.socket, n: int) -> bytes:
    chunks = bytearray()
    while len(chunks) < n:
        chunk = conn.recv(n - len(chunks))
        if not chunk:
            raise ConnectionError("the broker closed the connection before its reply was complete")
        chunks.extend(chunk)
    return bytes(chunks)

"""PADER on the wire: seller catalogues and friend shares on gossip, one iteration per stream.

* Catalogues — ``plexus/<network>/pader-catalogue``: a seller's :class:`Catalogue` (Paillier public key,
  key fingerprint, item ids, slot layouts) inside a ``SignedRecord`` signed by the seller's libp2p key;
  the record's author IS the seller (the catalogue's ``seller`` field is ignored and set from it).
* Friend shares — ``plexus/<network>/pader-friends``: a :class:`FriendShares` batch of ``Enc(−β u_f)``
  signed by the node that holds those users. A share's ``owner`` must be the author's peer id bytes
  (the node's own user) or ``author + b"/" + label`` (a user the node hosts, e.g. a dataset slice).
* Sessions — ``/plexus/pader/1.0.0``: the user side opens one stream per session and the frames go
  strictly in turn (request, reply, request, reply, ...)::

      U → S  ItemRequest           S → U  EncryptedItems | ErrorReply
      U → S  MaskedErrors          S → U  MaskedProduct (TRAIN) | RevealedValues (SCORE) | ErrorReply
      U → S  MaskedGradient        S → U  RevealedValues | ErrorReply

  A refused frame is answered with an ``ErrorReply`` and the session stays where it was: the user may
  send a corrected frame on the same stream. ``ItemRequest.user`` is never trusted: the seller builds
  the user id from the stream's authenticated remote peer id, plus ``"/" + label`` when the request
  names a hosted user (``label``, at most :data:`MAX_LABEL_BYTES`).

Role messages (``recsys.pader.messages``) are plain dataclasses; :func:`to_wire` / :func:`from_wire`
convert them to and from the registered wire classes below (same fields, with size caps).
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass, field
from typing import Any

from libp2p.peer.id import ID

from protocols.codec import DecodeError, decode, encode
from protocols.framing import ByteStream, read_frame, write_frame
from protocols.message import ErrorReply, limits, wire_message
from protocols.records import decode_signed, encode_signed, sign_record
from protocols.validation import Validation, accept, reject
from recsys.pader import messages as role

PROTOCOL_ID = "/plexus/pader/1.0.0"
"""Stream protocol of one PADER session."""
CATALOGUE_TOPIC = "pader-catalogue"
"""Service part of the catalogue topic ``plexus/<network>/pader-catalogue``."""
FRIENDS_TOPIC = "pader-friends"
"""Service part of the friend-share topic ``plexus/<network>/pader-friends``."""

MAX_KEY_BYTES = 384
"""Largest Paillier modulus accepted (3072 bits)."""
MAX_CT_BYTES = 768
"""Largest ciphertext (``n²`` of a 3072-bit key); a 2048-bit ciphertext is 512 bytes."""
FP_BYTES = 16
"""Key fingerprint length."""
MAX_CATALOGUE_ITEMS = 8192
"""Items one seller may list."""
MAX_REQUEST_ITEMS = 1024
"""Items in one session request."""
MAX_CIPHERTEXTS = 1280
"""Ciphertexts in one message (e.g. 1024 items / 9 slots per block × d = 16, or vectors of 1024 items)."""
MAX_VALUES = MAX_REQUEST_ITEMS
"""Revealed values in one message (one per item or per dimension)."""
MAX_VALUE_BYTES = role.MAX_VALUE_BYTES
"""Largest revealed value (signed big-endian bytes)."""
MAX_SHARES = 64
"""Friend shares in one gossip batch."""
MAX_SHARE_CTS = 8
"""Ciphertexts in one friend share (d ≤ 64 at ≥ 8 slots)."""
MAX_ID_BYTES = 96
"""Longest user / seller id: a peer id (≤ 64 bytes) plus ``/label``."""
MAX_LABEL_BYTES = 16
"""Longest hosted-user label in a request."""
MAX_SEQ = 2**63 - 1
"""Largest catalogue sequence number."""
MAX_ITEM_ID = 2**62
"""Item ids are non-negative ints below this."""
LABEL_SEPARATOR = b"/"
"""Between a hosting node's peer id and a hosted user's label."""
CT_FRAME_OVERHEAD = 4096
"""Envelope and small fields on top of the ciphertext bytes of one frame."""
MAX_SESSION_FRAME = MAX_CIPHERTEXTS * (MAX_CT_BYTES + 3) + CT_FRAME_OVERHEAD
"""Largest frame on a session stream."""
MAX_GOSSIP_FRAME = 256 * 1024
"""Largest catalogue or friend-share record (the node's gossip cap)."""

# ErrorReply codes of the session protocol.
MALFORMED = 1
"""The frame did not decode or was of the wrong type for this point of the session."""
REFUSED = 2
"""The role refused the message (wrong key, replay, overflow, unknown session ...)."""
NOT_SERVING = 3
"""This node is not a seller (or holds no such key)."""

_CT = limits(max_len=MAX_CT_BYTES)
_SESSION = limits(min_len=role.SESSION_BYTES, max_len=role.SESSION_BYTES)
_FP = limits(min_len=FP_BYTES, max_len=FP_BYTES)
_ITER = limits(min=0, max=MAX_SEQ)


def _cts(max_len: int = MAX_CIPHERTEXTS) -> dict:
    return limits(max_len=max_len, items=_CT)


@wire_message(type_id=0x0301, version=1, max_size=MAX_GOSSIP_FRAME)
@dataclass(frozen=True)
class Catalogue:
    """A seller's public key and items (signed by the seller; see the module docstring)."""

    seq: int = field(metadata=limits(min=0, max=MAX_SEQ))
    """The seller's clock in ms: a larger seq replaces the catalogue held."""
    public_key: bytes = field(metadata=limits(min_len=1, max_len=MAX_KEY_BYTES))
    """Paillier ``n`` big-endian."""
    key_fp: bytes = field(metadata=_FP)
    """Fingerprint of ``public_key``."""
    items: tuple[int, ...] = field(metadata=limits(min_len=1, max_len=MAX_CATALOGUE_ITEMS,
                                                   items=limits(min=0, max=MAX_ITEM_ID)))
    """Item ids in catalogue order."""
    item_slot_bits: int = field(metadata=limits(min=1, max=4096))
    """Slot bits of the item-major layout."""
    vector_slot_bits: int = field(metadata=limits(min=1, max=4096))
    """Slot bits of the dim-major layout."""

    @classmethod
    def sample(cls) -> "Catalogue":
        return cls(1, b"\x01" * 256, b"\x02" * FP_BYTES, (0, 1, 2), 100, 120)


@dataclass(frozen=True)
class Share:
    """One ``Enc(−β u_f)`` under one seller key (a ``recsys.pader.FriendShare``)."""

    owner: bytes = field(metadata=limits(min_len=1, max_len=MAX_ID_BYTES))
    """The user whose vector it is (author peer id, or author + ``/label``)."""
    key_fp: bytes = field(metadata=_FP)
    """Seller key it is encrypted under."""
    version: int = field(metadata=_ITER)
    """Increases when the owner's vector changes."""
    cts: tuple[bytes, ...] = field(metadata=_cts(MAX_SHARE_CTS))
    """Vector-layout chunks."""


@wire_message(type_id=0x0302, version=1, max_size=MAX_GOSSIP_FRAME)
@dataclass(frozen=True)
class FriendShares:
    """A batch of friend shares of users held by the signing node."""

    shares: tuple[Share, ...] = field(metadata=limits(min_len=1, max_len=MAX_SHARES))
    """The shares."""

    @classmethod
    def sample(cls) -> "FriendShares":
        return cls((Share(b"\x00" * 38, b"\x02" * FP_BYTES, 1, (b"\x03" * 512,)),))


@wire_message(type_id=0x0303, version=1, max_size=64 * 1024)
@dataclass(frozen=True)
class ItemRequest:
    """U → S: open a session (``recsys.pader.ItemRequest`` without the untrusted ``user``)."""

    session: bytes = field(metadata=_SESSION)
    iteration: int = field(metadata=_ITER)
    label: bytes = field(metadata=limits(max_len=MAX_LABEL_BYTES))
    """Empty: the node's own user; else the label of a user the requesting node hosts."""
    key_fp: bytes = field(metadata=_FP)
    purpose: int = field(metadata=limits(min=0, max=1))
    items: tuple[int, ...] = field(metadata=limits(min_len=1, max_len=MAX_REQUEST_ITEMS,
                                                   items=limits(min=0, max=MAX_ITEM_ID)))

    def check(self) -> None:
        if LABEL_SEPARATOR in self.label:
            raise ValueError("label may not contain '/'")

    @classmethod
    def sample(cls) -> "ItemRequest":
        return cls(b"\x00" * role.SESSION_BYTES, 1, b"", b"\x02" * FP_BYTES, 0, (1, 2))


@wire_message(type_id=0x0304, version=1, max_size=MAX_SESSION_FRAME)
@dataclass(frozen=True)
class EncryptedItems:
    """S → U: ``recsys.pader.EncryptedItems``."""

    session: bytes = field(metadata=_SESSION)
    iteration: int = field(metadata=_ITER)
    key_fp: bytes = field(metadata=_FP)
    positions: tuple[int, ...] = field(metadata=limits(max_len=MAX_REQUEST_ITEMS,
                                                       items=limits(min=0, max=MAX_CATALOGUE_ITEMS)))
    blocks: tuple[int, ...] = field(metadata=limits(max_len=MAX_REQUEST_ITEMS,
                                                    items=limits(min=0, max=MAX_CATALOGUE_ITEMS)))
    columns: tuple[bytes, ...] = field(metadata=_cts())
    vectors: tuple[bytes, ...] = field(metadata=_cts())

    @classmethod
    def sample(cls) -> "EncryptedItems":
        return cls(b"\x00" * role.SESSION_BYTES, 1, b"\x02" * FP_BYTES, (0,), (0,), (b"\x01" * 512,), ())


@wire_message(type_id=0x0305, version=1, max_size=MAX_SESSION_FRAME)
@dataclass(frozen=True)
class MaskedErrors:
    """U → S: ``recsys.pader.MaskedErrors``."""

    session: bytes = field(metadata=_SESSION)
    iteration: int = field(metadata=_ITER)
    key_fp: bytes = field(metadata=_FP)
    cts: tuple[bytes, ...] = field(metadata=_cts())

    @classmethod
    def sample(cls) -> "MaskedErrors":
        return cls(b"\x00" * role.SESSION_BYTES, 1, b"\x02" * FP_BYTES, (b"\x01" * 512,))


@wire_message(type_id=0x0306, version=1, max_size=64 * 1024)
@dataclass(frozen=True)
class MaskedProduct:
    """S → U: ``recsys.pader.MaskedProduct``."""

    session: bytes = field(metadata=_SESSION)
    iteration: int = field(metadata=_ITER)
    key_fp: bytes = field(metadata=_FP)
    cts: tuple[bytes, ...] = field(metadata=_cts(MAX_SHARE_CTS))

    @classmethod
    def sample(cls) -> "MaskedProduct":
        return cls(b"\x00" * role.SESSION_BYTES, 1, b"\x02" * FP_BYTES, (b"\x01" * 512,))


@wire_message(type_id=0x0307, version=1, max_size=MAX_SESSION_FRAME)
@dataclass(frozen=True)
class MaskedGradient:
    """U → S: ``recsys.pader.MaskedGradient``."""

    session: bytes = field(metadata=_SESSION)
    iteration: int = field(metadata=_ITER)
    key_fp: bytes = field(metadata=_FP)
    gradient: tuple[bytes, ...] = field(metadata=_cts(MAX_SHARE_CTS))
    item_gradients: tuple[bytes, ...] = field(metadata=_cts())

    @classmethod
    def sample(cls) -> "MaskedGradient":
        return cls(b"\x00" * role.SESSION_BYTES, 1, b"\x02" * FP_BYTES, (b"\x01" * 512,), (b"\x01" * 512,))


@wire_message(type_id=0x0308, version=1, max_size=MAX_VALUES * (MAX_VALUE_BYTES + 3) + CT_FRAME_OVERHEAD)
@dataclass(frozen=True)
class RevealedValues:
    """S → U: ``recsys.pader.RevealedValues``."""

    session: bytes = field(metadata=_SESSION)
    iteration: int = field(metadata=_ITER)
    values: tuple[bytes, ...] = field(metadata=limits(max_len=MAX_VALUES,
                                                      items=limits(min_len=1, max_len=MAX_VALUE_BYTES)))

    @classmethod
    def sample(cls) -> "RevealedValues":
        return cls(b"\x00" * role.SESSION_BYTES, 1, (b"\x01",))


_TO_WIRE: dict[type, type] = {
    role.EncryptedItems: EncryptedItems, role.MaskedErrors: MaskedErrors, role.MaskedProduct: MaskedProduct,
    role.MaskedGradient: MaskedGradient, role.RevealedValues: RevealedValues,
}
_FROM_WIRE: dict[type, type] = {v: k for k, v in _TO_WIRE.items()}
SESSION_REPLIES = (EncryptedItems, MaskedProduct, RevealedValues, ErrorReply)
"""What a seller may send on a session stream."""
SESSION_REQUESTS = (ItemRequest, MaskedErrors, MaskedGradient)
"""What a user may send on a session stream."""


def to_wire(msg: Any, label: bytes = b"") -> Any:
    """The wire form of a role message (``ItemRequest``: ``user`` dropped, ``label`` sent instead)."""
    if isinstance(msg, role.ItemRequest):
        return ItemRequest(msg.session, msg.iteration, label, msg.key_fp, msg.purpose, tuple(msg.items))
    return _TO_WIRE[type(msg)](*dataclasses.astuple(msg))


def from_wire(msg: Any, peer: bytes | None = None) -> Any:
    """The role message of a wire message; an ``ItemRequest`` gets ``user`` from the authenticated ``peer``."""
    if isinstance(msg, ItemRequest):
        if peer is None:
            raise ValueError("an ItemRequest needs the authenticated peer id")
        return role.ItemRequest(msg.session, msg.iteration, user_id(peer, msg.label), msg.key_fp, msg.purpose,
                                tuple(msg.items))
    return _FROM_WIRE[type(msg)](**{f.name: getattr(msg, f.name) for f in dataclasses.fields(msg)})


def user_id(peer: bytes, label: bytes = b"") -> bytes:
    """User id of a node's own user (``peer``) or of a user it hosts (``peer/label``)."""
    return peer + LABEL_SEPARATOR + label if label else peer


# -- gossip records -----------------------------------------------------------------------------

def topic(network: str, service: str) -> str:
    """``plexus/<network>/<service>``."""
    return f"plexus/{network}/{service}"


def sign_catalogue(cat: role.SellerCatalogue, seq: int, private_key) -> bytes:
    """The signed-record frame of a seller's catalogue."""
    msg = Catalogue(seq, cat.public_key, cat.key_fp, tuple(cat.items), cat.item_slot_bits, cat.vector_slot_bits)
    return encode_signed(sign_record(msg, private_key))


def check_catalogue(data: bytes) -> tuple[Validation, role.SellerCatalogue | None, int]:
    """Validate a catalogue frame: ``(verdict, catalogue with seller = author, seq)``."""
    if len(data) > MAX_GOSSIP_FRAME:
        return reject("catalogue record too large"), None, 0
    try:
        author, msg = decode_signed(data, expect=Catalogue)
    except DecodeError as err:
        return reject(err.reason), None, 0
    cat = role.SellerCatalogue(author, msg.public_key, msg.key_fp, msg.items, msg.item_slot_bits,
                               msg.vector_slot_bits)
    return accept(), cat, msg.seq


def sign_shares(shares: list[role.FriendShare], private_key) -> bytes:
    """The signed-record frame of a batch of friend shares (at most ``MAX_SHARES``)."""
    batch = FriendShares(tuple(Share(s.owner, s.key_fp, s.version, tuple(s.cts)) for s in shares))
    return encode_signed(sign_record(batch, private_key))


def check_shares(data: bytes) -> tuple[Validation, list[role.FriendShare]]:
    """Validate a friend-share batch: every owner must be the author or a user the author hosts."""
    if len(data) > MAX_GOSSIP_FRAME:
        return reject("friend-share record too large"), []
    try:
        author, msg = decode_signed(data, expect=FriendShares)
    except DecodeError as err:
        return reject(err.reason), []
    prefix = author + LABEL_SEPARATOR
    for share in msg.shares:
        if share.owner != author and not share.owner.startswith(prefix):
            return reject("friend share of a user the author does not hold"), []
    return accept(), [role.FriendShare(s.owner, s.key_fp, s.version, s.cts) for s in msg.shares]


def peer_bytes(peer: ID | str) -> bytes:
    """Peer id bytes of an ``ID`` or a base58 string."""
    return (peer if isinstance(peer, ID) else ID.from_base58(peer)).to_bytes()


# -- session streams ----------------------------------------------------------------------------

class SessionRefused(RuntimeError):
    """The seller answered a session frame with an ``ErrorReply``."""

    def __init__(self, code: int, reason: str) -> None:
        super().__init__(f"seller refused ({code}): {reason}")
        self.code, self.reason = code, reason


class SessionClient:
    """User side of one session stream: :meth:`exchange` sends a role message and returns the role reply.

    ``bytes_out`` / ``bytes_in`` count frame bytes (with the 4-byte length prefix).
    """

    def __init__(self, stream: ByteStream, label: bytes = b"") -> None:
        self.stream, self.label = stream, label
        self.bytes_out = self.bytes_in = 0

    async def send_raw(self, wire_msg: Any) -> Any:
        """Send an already-built wire message; return the decoded wire reply (``SessionRefused`` on error)."""
        frame = encode(wire_msg)
        await write_frame(self.stream, frame)
        self.bytes_out += len(frame) + 4
        data = await read_frame(self.stream, MAX_SESSION_FRAME)
        self.bytes_in += len(data) + 4
        reply = decode(data, expect=SESSION_REPLIES)
        if isinstance(reply, ErrorReply):
            raise SessionRefused(reply.code, reply.reason)
        return reply

    async def exchange(self, msg: Any) -> Any:
        """Send a role message, return the seller's role reply."""
        return from_wire(await self.send_raw(to_wire(msg, self.label)))


async def read_request(stream: ByteStream) -> tuple[Any, int]:
    """Seller side: the next request frame decoded (``DecodeError`` if bad) and its size in bytes."""
    data = await read_frame(stream, MAX_SESSION_FRAME)
    return decode(data, expect=SESSION_REQUESTS), len(data) + 4


async def write_reply(stream: ByteStream, msg: Any) -> int:
    """Seller side: send a role reply (or an ``ErrorReply``); returns the bytes written."""
    frame = encode(msg if isinstance(msg, ErrorReply) else to_wire(msg))
    await write_frame(stream, frame)
    return len(frame) + 4


def error(code: int, reason: str) -> ErrorReply:
    """An ``ErrorReply`` with the reason cut to the wire limit."""
    return ErrorReply(code=code, reason=reason[:500])

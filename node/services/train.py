"""Shared-seed SPSA fine-tuning: one byte per sample and round on gossip, catch-up over a stream.

A run is announced on ``plexus/<network>/spsa`` (:class:`protocols.spsa.RunAnnouncement`); round r
is open from ``start + r·round_s`` to its deadline ``start + (r+1)·round_s``. At a round's opening
each participant measures its projected gradients on its own shard and publishes one
:class:`protocols.spsa.SpsaUpdate`; every update received (ours included: GossipSub hands our
own publishes to our subscription) is admitted to the replica with the signed message it came in;
at the deadline the round is closed (every admitted update applied in peer order) and checked.
A node that finds itself more than a round behind, or whose checksum loses the vote of a
round's updates (plurality, ties to the larger checksum: ``learning.consensus``), fetches a checkpoint
and the signed log from a peer on ``/plexus/spsa/1.0.0``.

torch is imported only when a run starts (``node.services.train_state``), never at daemon start-up;
all torch work runs in a worker thread, one call at a time.
"""

from __future__ import annotations

import dataclasses
import logging
import time
from dataclasses import asdict
from pathlib import Path
from typing import Any

import anyio
import trio
from libp2p.peer.id import ID
from libp2p.pubsub.pb import rpc_pb2
from libp2p.utils.varint import encode_uvarint

from learning.consensus import resync_sources
from node.control import CommandError
from node.runtime import Node
from node.services.train_settings import TrainSettings, announcement_for
from protocols import spsa as wire
from protocols.codec import DecodeError, decode, encode
from protocols.validation import Validation, accept, ignore, reject

log = logging.getLogger(__name__)

RUN_KEY = "train.run"
"""Store key of the announcement of the run this node takes part in (resumed after a restart)."""
CACHE_DIR = Path.home() / ".cache" / "plexus"
"""Where the corpus cache lives (shared by the nodes of one machine)."""
LOOKAHEAD = 1
"""Rounds ahead of ours whose updates we already accept (a peer's clock may run a little ahead)."""


class TrainService:
    """Take part in SPSA runs: `train.start`, `train.status`, `train.stop`."""

    name = "train"

    def __init__(self) -> None:
        self.node: Node | None = None
        self.settings = TrainSettings()
        self.known: dict[str, tuple[wire.RunAnnouncement, bytes]] = {}
        self.ann: wire.RunAnnouncement | None = None
        self.trainer = None
        self.round = -1
        self.syncing = False
        self.state = "idle"
        self._lock = anyio.Lock()
        self._buffer: list[tuple[Any, bytes]] = []
        self._seen: dict[int, set[bytes]] = {}
        self._peers: set[bytes] = set()
        self._cancel: trio.CancelScope | None = None
        self.stats: dict[str, Any] = {}
        self._next_sync = 0.0
        self._created_at = 0.0

    async def start(self, node: Node) -> None:
        self.node = node
        self.settings = TrainSettings.from_options(node.settings.option)
        await node.subscribe(wire.topic(node.settings.network), self._on_message, self._validate)
        node.serve_protocol(wire.PROTOCOL_ID, self._serve)
        node.control.add("train.start", self._cmd_start)
        node.control.add("train.status", self._cmd_status)
        node.control.add("train.stop", self._cmd_stop)
        stored = node.store.get(RUN_KEY)
        if stored:
            ann = decode(stored, expect=wire.RunAnnouncement)
            if ann.round_at(time.time()) < ann.rounds:
                log.info("train: resuming run %s after a restart", ann.run)
                self._begin(ann, resume=True)

    # -- worker ------------------------------------------------------------------------------
    async def _work(self, fn, *args):
        async with self._lock:
            return await anyio.to_thread.run_sync(fn, *args)

    # -- gossip ------------------------------------------------------------------------------
    def _validate(self, author: str, msg: rpc_pb2.Message) -> Validation:
        verdict, body = wire.validate_gossip(msg.data)
        if not verdict.passes or not isinstance(body, wire.SpsaUpdate) or self.ann is None or body.r != self.ann.run:
            return verdict
        if len(body.g) != self.ann.samples_per_round:
            return reject(f"{len(body.g)} samples, run has {self.ann.samples_per_round}")
        if self.syncing or self.trainer is None:
            return accept()
        if body.n < self.round:
            return ignore(f"stale round {body.n} (ours {self.round})")
        if body.n > self.round + LOOKAHEAD:
            return ignore(f"round {body.n} too far ahead (ours {self.round})")
        if msg.from_id in self._seen.get(body.n, ()):
            return ignore("second update from this peer in this round")
        return accept()

    async def _on_message(self, msg: rpc_pb2.Message) -> None:
        body = decode(msg.data, expect=(wire.SpsaUpdate, wire.RunAnnouncement))
        if isinstance(body, wire.RunAnnouncement):
            if body.run not in self.known:
                log.info("train: run %s announced by %s", body.run, ID(msg.from_id))
            self.known[body.run] = (body, msg.from_id)
            return
        if self.ann is None or body.r != self.ann.run or self.state == "stopped":
            return
        record = wire.record_of(body, msg.from_id)
        raw = msg.SerializeToString()
        if msg.from_id == self.node.peer_id.to_bytes():
            rpc = rpc_pb2.RPC(publish=[msg]).SerializeToString()
            self.stats["payload_bytes"] = len(body.g)
            self.stats["envelope_bytes"] = len(msg.data)
            self.stats["wire_bytes"] = len(encode_uvarint(len(rpc))) + len(rpc)
        else:
            self._peers.add(msg.from_id)
        if self.syncing or self.trainer is None or self.trainer.replica is None:
            self._buffer.append((record, raw))
            return
        await self._admit(record, raw)

    async def _admit(self, record, raw: bytes) -> bool:
        try:
            await self._work(self.trainer.admit, record, raw)
        except ValueError as exc:
            self.stats["refused"] = self.stats.get("refused", 0) + 1
            log.debug("train: update of %s refused: %s", ID(record.peer), exc)
            return False
        self._seen.setdefault(record.round, set()).add(record.peer)
        gauntlet = self._gauntlet()
        if gauntlet is not None:
            gauntlet.on_admitted(record)
        return True

    # -- control -----------------------------------------------------------------------------
    async def _cmd_start(self, args: dict) -> dict:
        if self.ann is not None and self.state not in ("done", "stopped"):
            raise CommandError(f"already in run {self.ann.run!r}; `plexus train stop` first")
        run = args.get("run")
        if not isinstance(run, str) or not run or len(run.encode()) > wire.MAX_RUN_NAME_BYTES:
            raise CommandError(f"run must be a name of 1..{wire.MAX_RUN_NAME_BYTES} bytes")
        if run in self.known:
            ann, _ = self.known[run]
            joined = "joined"
            self._created_at = time.time()
        else:
            try:
                ann = announcement_for(args, self.settings, time.time())
            except (ValueError, TypeError) as exc:
                raise CommandError(str(exc)) from exc
            if ann.model != "tiny" and not Path(ann.model).exists():
                raise CommandError(f"no model at {ann.model}")
            joined = "created"
            self._created_at = time.time()
        delay = ann.start_time - time.time()
        self._begin(ann, resume=False, create=joined == "created")
        return {"run": ann.run, joined: True, "round_s": ann.round_s, "rounds": ann.rounds,
                "starts_in_s": round(delay, 2), "after_loading": joined == "created"}

    async def _cmd_status(self, _args: dict) -> dict:
        ann = self.ann
        out = {"state": self.state, "run": ann.run if ann else None, "round": self.round,
               "rounds": ann.rounds if ann else None, "syncing": self.syncing,
               "known_runs": sorted(self.known)}
        out.update(self.stats)
        if ann is not None:
            out["announcement"] = asdict(ann)
        return out

    async def _cmd_stop(self, _args: dict) -> dict:
        if self.ann is None:
            raise CommandError("no run to stop")
        if self._cancel is not None:
            self._cancel.cancel()
        self.node.store.put(RUN_KEY, b"")
        self.state = "stopped"
        return {"run": self.ann.run, "stopped_at_round": self.round}

    async def _announce(self) -> None:
        try:
            await self.node.publish(wire.topic(self.node.settings.network), encode(self.ann))
        except Exception as exc:  # noqa: BLE001 - no peers yet: the next announcement goes out later
            log.info("train: announcement not sent: %s", exc)

    # -- the run -----------------------------------------------------------------------------
    def _begin(self, ann: wire.RunAnnouncement, resume: bool, create: bool = False) -> None:
        self.ann = ann
        self.state = "loading"
        self.stats = {"curve": [], "syncs": 0, "refused": 0, "applied_per_round": []}
        self._next_sync = 0.0
        if not create:
            self._adopt(ann)
        self.node.spawn(f"train.run[{ann.run}]", self._run, ann, resume, create)

    def _adopt(self, ann: wire.RunAnnouncement) -> None:
        self.ann = ann
        self.known[ann.run] = (ann, self.known.get(ann.run, (ann, self.node.peer_id.to_bytes()))[1])
        self.node.store.put(RUN_KEY, encode(ann))

    async def _run(self, ann: wire.RunAnnouncement, resume: bool, create: bool) -> None:
        with trio.CancelScope() as scope:
            self._cancel = scope
            try:
                await self._load(ann)
                if create:
                    # round 0 opens a start delay after *our* loading: peers load while we wait
                    delay = ann.start_time - self._created_at
                    ann = dataclasses.replace(ann, start_time=time.time() + delay)
                    self._adopt(ann)
                    await self._announce()
                await self._prepare(ann, resume)
                await self._rounds(ann)
            except Exception as exc:
                self.state = "failed"
                self.stats["error"] = f"{type(exc).__name__}: {exc}"
                raise

    async def _load(self, ann: wire.RunAnnouncement) -> None:
        from node.services.train_state import Trainer, shard_of

        peer = self.node.peer_id.to_bytes()
        shard = self.settings.shard if self.settings.shard >= 0 else shard_of(peer, ann.n_shards)
        root = self.node.home.root / "train" / ann.run
        root.mkdir(parents=True, exist_ok=True)
        self.stats["shard"] = shard
        self.trainer = await anyio.to_thread.run_sync(
            Trainer, ann, peer, shard, root, self.node.store, CACHE_DIR, self.settings.eval_spec())
        self.stats["params"] = self.trainer.params

    async def _prepare(self, ann: wire.RunAnnouncement, resume: bool) -> None:
        if resume and await self._work(self.trainer.resume):
            self.round = self.trainer.replica.round
            log.info("train: %s resumed at round %d from disk", ann.run, self.round)
        elif ann.round_at(time.time()) > 0:
            await self._sync(preferred=())
        if self.trainer.replica is None:
            await self._start_fresh(ann)
        await self._drain_buffer()

    async def _start_fresh(self, ann: wire.RunAnnouncement) -> None:
        """Round 0 from the initial model (identical on every peer); late, only if no peer could help."""
        if ann.round_at(time.time()) > 0:
            log.warning("train: no peer served run %s: starting it from round 0 alone", ann.run)
        await self._work(self.trainer.fresh)
        self.round = 0

    async def _rounds(self, ann: wire.RunAnnouncement) -> None:
        contributed = -1
        while self.round < ann.rounds:
            now = time.time()
            clock = ann.round_at(now)
            if clock < self.round:
                self.state = "waiting"
                await trio.sleep(max(0.0, ann.opens(self.round) - now))
                continue
            if clock > self.round + 1:
                if time.monotonic() >= self._next_sync:
                    # at most one catch-up attempt per round; between them, close what we have
                    self._next_sync = time.monotonic() + ann.round_s
                    await self._sync(preferred=())
                    await self._drain_buffer()
                else:
                    await self._close()
                continue
            if clock == self.round + 1:
                await self._close()
                continue
            self.state = "training"
            if contributed < self.round and now < ann.opens(self.round) + self.settings.publish_cutoff * ann.round_s:
                contributed = self.round
                await self._contribute()
            await trio.sleep(max(0.0, ann.opens(self.round + 1) - time.time()))
        await self._settle(ann)
        self.state = "done"
        log.info("train: run %s done at round %d, checksum %s", ann.run, self.round, self.stats.get("checksum"))

    async def _contribute(self) -> None:
        gauntlet = self._gauntlet()
        if gauntlet is not None and gauntlet.misbehaves():
            record, train_loss = await gauntlet.own_update(self)  # honest on its assigned pool, or an adversary
            if record is None:  # a free-rider publishes nothing
                return
        else:
            record, train_loss = await self._work(self.trainer.own_update)
        self.stats["train_loss"] = round(train_loss, 5)
        ann = self.ann
        # an update finished too close to the deadline would reach some peers before and some after it
        latest = ann.opens(self.round + 1) - (1 - self.settings.publish_cutoff) * ann.round_s / 2
        if record.round != self.round or time.time() > latest:
            self.stats["late_updates"] = self.stats.get("late_updates", 0) + 1
            log.info("train %s: own update of round %d finished too late to publish", ann.run, record.round)
            return
        await self.node.publish(wire.topic(self.node.settings.network), encode(wire.update_message(record)))
        if self.round % self.settings.announce_every == 0:
            await self._announce()

    async def _close(self) -> None:
        gauntlet = self._gauntlet()
        weigh = await gauntlet.on_close(self) if gauntlet is not None else None
        result = await self._work(self.trainer.close_round, self.settings.checkpoint_every, weigh)
        self._seen.pop(result.round, None)
        self.round = result.round + 1
        self.stats.update(checksum=result.checksum.hex(), peers_this_round=result.peers, closed_round=result.round)
        self.stats["applied_per_round"].append(result.peers * self.ann.samples_per_round)
        if result.round % self.settings.eval_every == 0 or self.round >= self.ann.rounds:
            eval_loss = await self._work(self.trainer.evaluate)
            self.stats["eval_loss"] = round(eval_loss, 5)
            self.stats["curve"].append([result.round, round(eval_loss, 5)])
        log.info("train %s: round %d/%d closed: %d peers, train loss %s, eval loss %s, checksum %s",
                 self.ann.run, result.round, self.ann.rounds - 1, result.peers, self.stats.get("train_loss"),
                 self.stats.get("eval_loss"), result.checksum.hex())
        if result.diverged_from:
            log.warning("train %s: round %d was built on a checksum that lost the vote: re-sync", self.ann.run,
                        result.round)
            self.stats["divergences"] = self.stats.get("divergences", 0) + 1
            await self._sync(preferred=result.diverged_from, full=True)
            await self._drain_buffer()

    async def _settle(self, ann: wire.RunAnnouncement) -> None:
        """After the last round nobody's next update reveals a split: ask peers for their checksum.

        A node whose final checksum loses the vote among itself and the answering peers adopts the winner.
        """
        await trio.sleep(self.settings.publish_cutoff * ann.round_s)  # let the slowest peer close too
        mine = self.trainer.replica.checksum
        bases = {self.node.peer_id.to_bytes(): mine}
        for peer in self._candidates(())[: self.settings.settle_peers]:
            try:
                with trio.fail_after(self.settings.sync_timeout_s):
                    stream = await self.node.open_stream(peer, wire.PROTOCOL_ID)
                    try:
                        answer = await wire.fetch_sync(stream, ann.run, self.round - 1, self.settings.max_sync_bytes)
                    finally:
                        await stream.close()
            except Exception as exc:  # noqa: BLE001 - a peer that cannot answer has no vote
                log.info("train: settle: %s did not answer: %s", peer, exc)
                continue
            if answer.header.closed_round == self.round - 1:
                bases[peer.to_bytes()] = answer.header.checksum
        sources = resync_sources(bases, mine)
        if sources:
            log.warning("train %s: final checksum %s lost the vote: adopting %s", ann.run, mine.hex(),
                        bases[sources[0]].hex())
            self.stats["divergences"] = self.stats.get("divergences", 0) + 1
            await self._sync(preferred=sources, full=True)

    # -- gauntlet hooks (node/services/gauntlet.py; no-ops when that service does not run) ----------
    def _gauntlet(self):
        """The gauntlet service if this node runs it, else None."""
        try:
            return self.node.service("gauntlet")
        except KeyError:
            return None

    # -- sync --------------------------------------------------------------------------------
    async def _drain_buffer(self) -> None:
        buffered, self._buffer = self._buffer, []
        for record, raw in buffered:
            if self.trainer.replica is not None and record.round >= self.round:
                await self._admit(record, raw)

    def _candidates(self, preferred) -> list[ID]:
        me = self.node.peer_id
        order = [ID(p) for p in preferred] + [ID(p) for p in sorted(self._peers)]
        order += [ID(self.known[self.ann.run][1])] + self.node.connected_peers()
        seen, out = set(), []
        for peer in order:
            if peer != me and peer not in seen:
                seen.add(peer)
                out.append(peer)
        return out

    async def _sync(self, preferred, full: bool = False) -> bool:
        self.syncing, self.state = True, "syncing"
        try:
            for peer in self._candidates(preferred):
                replica = self.trainer.replica
                after = -1 if full or replica is None else replica.round - 1
                try:
                    await self._sync_from(peer, after)
                except (wire.SyncFailed, DecodeError, ValueError, OSError, trio.TooSlowError) as exc:
                    log.info("train: sync from %s failed: %s", peer, exc)
                    continue
                except Exception as exc:  # noqa: BLE001 - libp2p dial/negotiation errors come in many types
                    log.info("train: sync from %s failed: %s: %s", peer, type(exc).__name__, exc)
                    continue
                self.stats["syncs"] += 1
                log.info("train: synced %s from %s: now at round %d", self.ann.run, peer, self.round)
                return True
            return False
        finally:
            self.syncing = False

    async def _sync_from(self, peer: ID, after_round: int) -> None:
        with trio.fail_after(self.settings.sync_timeout_s):
            stream = await self.node.open_stream(peer, wire.PROTOCOL_ID)
            try:
                answer = await wire.fetch_sync(stream, self.ann.run, after_round, self.settings.max_sync_bytes)
            finally:
                await stream.close()
        await self._work(self.trainer.install, answer, self.settings.max_sync_bytes)
        self.round = self.trainer.replica.round
        self._seen = {r: set(p) for r, p in ((r, self.trainer.bases.get(r, {})) for r in self.trainer.bases)}
        self.stats["checksum"] = self.trainer.replica.checksum.hex()

    async def _serve(self, stream) -> None:
        with trio.move_on_after(self.settings.sync_timeout_s):
            await wire.serve_sync(stream, self._answer)
        await stream.close()

    async def _answer(self, request: wire.SyncRequest) -> wire.SyncAnswer:
        trainer = self.trainer
        if self.ann is None or request.run != self.ann.run or trainer is None or trainer.replica is None or self.syncing:
            raise wire.SyncFailed(f"not serving run {request.run!r}")
        ckpt_round, ckpt, log_bytes, closed, checksum = await self._work(trainer.answer, request.after_round)
        header = wire.SyncHeader(self.ann, ckpt_round, len(ckpt), len(log_bytes), closed, checksum)
        return wire.SyncAnswer(header, ckpt, log_bytes)

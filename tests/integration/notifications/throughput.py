"""How many notices per second the dispatcher sends: real PostgreSQL, a real SMTP sink (aiosmtpd).

Not a test (pytest does not collect it); run by hand::

    .venv/bin/python -m tests.integration.notifications.throughput --cases 100 --steps 5

Each case gets ``steps`` requests with a citizen id, so each request queues an email and its
inbox copy: cases x steps x 2 notices. They are queued first (the handler, as the consumer
runs it), then the dispatcher's ``run`` loop is timed until every notice is delivered; the
sink is checked for each case's mails arriving in the order they were requested.
"""

from __future__ import annotations

import argparse
import asyncio
import secrets
import tempfile
import time
from collections import defaultdict
from pathlib import Path

import asyncpg

from contracts import Channel
from hub.local.embedded.postgres import EmbeddedPostgres
from hub.local.embedded.smtp import SmtpSink
from hub.vault.crypto import KEY_BYTES
from hub.vault.master import load_ring
from services.notifications.channels import ChannelAdapter, EmailChannel, InboxChannel
from services.notifications.dispatcher import Dispatcher
from services.notifications.email_sender import SmtpEmailSender
from services.notifications.settings import NotificationSettings
from tests.integration.notifications.conftest import accept, incoming, migrated_pool, request, units

STEPS = ("received", "departure-confirmed", "arrival-registered", "tax-record-updated", "completed")


async def _queue(pool: asyncpg.Pool, master: object, cases: int, steps: int) -> None:
    for step in range(steps):  # step by step, as cases progress: one case's requests in order
        for case in range(cases):
            case_id = f"eumzug-{case}"
            notification_id = f"{case_id}:{step}-{STEPS[step % len(STEPS)]}"
            msg = incoming(request(notification_id, citizen_id=f"citizen-{case}"), case_id=case_id)
            await accept(pool, master, msg)  # type: ignore[arg-type]


async def _delivered(pool: asyncpg.Pool) -> int:
    async with pool.acquire() as conn:
        return int(await conn.fetchval("SELECT count(*) FROM notifications WHERE status = 'delivered'"))


async def measure(database_url: str, sink: SmtpSink, master_file: Path, cases: int, steps: int) -> float:
    master = load_ring(master_file)
    pool = await migrated_pool(database_url)
    settings = NotificationSettings()
    try:
        await _queue(pool, master, cases, steps)
        total = cases * steps * 2
        sender = SmtpEmailSender(sink.host, sink.port, connections=settings.smtp_connections)
        channels: dict[Channel, ChannelAdapter] = {
            Channel.EMAIL: EmailChannel(sender, from_address="noreply@hub.stadtluzern.ch"),
            Channel.INBOX: InboxChannel(units(pool, master)),
        }
        dispatcher = Dispatcher(units(pool, master), channels)
        stop = asyncio.Event()
        started, cpu_started = time.perf_counter(), time.process_time()
        running = asyncio.create_task(dispatcher.run(stop))
        while await _delivered(pool) < total:
            if running.done():
                running.result()
            await asyncio.sleep(0.05)
        elapsed, cpu = time.perf_counter() - started, time.process_time() - cpu_started
        stop.set()
        await running
        await sender.aclose()
    finally:
        await pool.close()
    _check_order(sink, cases, steps)
    rate = total / elapsed
    print(
        f"{total} notices ({total // 2} emails) of {cases} cases in {elapsed:.2f} s: {rate:.0f} notices/s "
        f"({cpu / total * 1000:.2f} ms of this process's CPU per notice)"
    )
    return rate


def _check_order(sink: SmtpSink, cases: int, steps: int) -> None:
    # The sink's Maildir is ordered by each message's Date header (seconds): not fine enough.
    # The Message-ID names the step, and arrival order is the file's modification time.
    arrived: dict[str, list[tuple[int, str]]] = defaultdict(list)
    for path in (sink.maildir / "new").iterdir():
        text = path.read_text("utf-8", errors="replace")
        case = next(line for line in text.splitlines() if line.startswith("X-Hub-Case-Id:")).split()[1]
        message_id = next(line for line in text.splitlines() if line.startswith("Message-ID:")).split()[1]
        arrived[case].append((path.stat().st_mtime_ns, message_id))
    assert len(arrived) == cases, f"mails of {len(arrived)} cases arrived, not {cases}"
    for case, mails in arrived.items():
        # <eumzug-7.3-tax-record-updated@...>: step 3 of case eumzug-7
        order = [int(mid.strip("<>").split("@")[0].split(".")[1].split("-")[0]) for _, mid in sorted(mails)]
        assert order == list(range(steps)), f"{case}: steps arrived as {order}"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--cases", type=int, default=100, help="relocation cases")
    parser.add_argument("--steps", type=int, default=5, help="requests per case (email + inbox copy each)")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory(prefix="hub-throughput-") as state:
        folder = Path(state)
        master_file = folder / "master.key"
        master_file.write_text(secrets.token_hex(KEY_BYTES))
        postgres, sink = EmbeddedPostgres(folder / "pg"), SmtpSink(folder / "smtp")
        postgres.start()
        sink.start()
        try:
            asyncio.run(measure(postgres.dsn, sink, master_file, args.cases, args.steps))
        finally:
            sink.stop()
            postgres.stop()


if __name__ == "__main__":
    main()

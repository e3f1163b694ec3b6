"""JetStream with the official Python client (nats-py): streams, pull and push consumers,
key-value. Prints a transcript that the integration test compares between the reference
server and ours (tests/consumer.rs, python_client_pull_push_and_key_value).

Usage: python3 js.py nats://127.0.0.1:PORT
"""

import asyncio
import sys

import nats
from nats.errors import TimeoutError as NatsTimeout


def seqs(ci):
    return (
        f"delivered={ci.delivered.consumer_seq}/{ci.delivered.stream_seq} "
        f"ack_floor={ci.ack_floor.consumer_seq}/{ci.ack_floor.stream_seq} "
        f"num_ack_pending={ci.num_ack_pending} num_redelivered={ci.num_redelivered} "
        f"num_pending={ci.num_pending}"
    )


async def main(url):
    nc = await nats.connect(url, allow_reconnect=False)
    js = nc.jetstream()

    si = await js.add_stream(name="PY", subjects=["py.>"])
    print("stream", si.config.name, si.config.subjects, si.state.messages)
    for i in range(10):
        ack = await js.publish(f"py.{i % 2}", f"m{i}".encode())
        print("puback", ack.stream, ack.seq, ack.duplicate)

    # Pull: two fetches of 5, acked with confirmation, then nothing left.
    psub = await js.pull_subscribe("py.>", durable="PULL", stream="PY")
    for _ in range(2):
        msgs = await psub.fetch(5, timeout=5)
        for m in msgs:
            md = m.metadata
            print(
                "pull", m.subject, m.data.decode(), md.sequence.stream,
                md.sequence.consumer, md.num_delivered, md.num_pending,
            )
            await m.ack_sync(timeout=5)
    try:
        more = await psub.fetch(1, timeout=1)
        print("pull unexpected", len(more))
    except NatsTimeout:
        print("pull empty: timeout")
    print("pull info", seqs(await js.consumer_info("PY", "PULL")))

    # Nak and redelivery.
    await js.publish("py.nak", b"again")
    nsub = await js.pull_subscribe("py.nak", durable="NAK", stream="PY")
    m = (await nsub.fetch(1, timeout=5))[0]
    await m.nak()
    m = (await nsub.fetch(1, timeout=5))[0]
    print("nak redelivered", m.data.decode(), m.metadata.num_delivered)
    await m.ack_sync(timeout=5)
    print("nak info", seqs(await js.consumer_info("PY", "NAK")))

    # Push: an ephemeral consumer on py.0.
    sub = await js.subscribe("py.0", stream="PY")
    for _ in range(5):
        m = await sub.next_msg(timeout=5)
        print("push", m.subject, m.data.decode(), m.metadata.sequence.stream)
        await m.ack()
    await sub.unsubscribe()

    # Key-value.
    kv = await js.create_key_value(bucket="PYKV", history=3)
    print("kv put", await kv.put("color", b"red"))
    print("kv put", await kv.put("color", b"blue"))
    print("kv put", await kv.put("size", b"xl"))
    e = await kv.get("color")
    print("kv get", e.key, e.value.decode(), e.revision)
    print("kv history", [(x.value.decode(), x.revision) for x in await kv.history("color")])
    print("kv keys", sorted(await kv.keys()))
    w = await kv.watchall()
    seen = []
    while True:
        u = await w.updates(timeout=5)
        if u is None:
            break
        seen.append((u.key, u.value.decode(), u.revision))
    print("kv watch initial", sorted(seen))
    await kv.put("size", b"s")
    u = await w.updates(timeout=5)
    print("kv watch update", u.key, u.value.decode(), u.revision, u.operation)
    await kv.delete("size")
    u = await w.updates(timeout=5)
    print("kv watch delete", u.key, u.revision, u.operation)
    await w.stop()

    await nc.close()
    print("done")


if __name__ == "__main__":
    asyncio.run(main(sys.argv[1]))

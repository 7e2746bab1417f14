"""The original project's consumer, as a peer of wikiflow in wfbench.

It reads recentchange events from a Kafka topic with kafka-python in a consumer
group and, for each message, runs one ``HINCRBY <hash> <meta.domain> 1`` against
Redis (redis-py, no pipelining). Offsets are committed after the messages of each
poll have been counted: at-least-once, so a crash between the two counts some
messages twice. It stops when its position reached the end offsets given with
--end (``partition:offset,...``) or when no message arrived for --idle seconds, and
prints the number of messages it counted.
"""

import argparse
import json
import sys
import time

import redis
from kafka import KafkaConsumer, TopicPartition


def parse_ends(text):
    """Returns {partition: end offset} from "0:123,1:456"."""
    ends = {}
    for part in filter(None, text.split(",")):
        p, o = part.split(":")
        ends[int(p)] = int(o)
    return ends


def reached(consumer, topic, ends):
    """True when the consumer's position is at or past every end offset."""
    for p, end in ends.items():
        tp = TopicPartition(topic, p)
        if consumer.position(tp) < end:
            return False
    return True


def run(args):
    r = redis.Redis.from_url(args.redis_url)
    consumer = KafkaConsumer(
        args.topic,
        bootstrap_servers=args.brokers.split(","),
        group_id=args.group,
        enable_auto_commit=False,
        auto_offset_reset="earliest",
    )
    ends = parse_ends(args.end)
    count = 0
    last = time.monotonic()
    try:
        while True:
            batches = consumer.poll(timeout_ms=500)
            for records in batches.values():
                for msg in records:
                    domain = json.loads(msg.value)["meta"]["domain"]
                    r.hincrby(args.hash, domain, 1)
                    count += 1
            if batches:
                consumer.commit()
                last = time.monotonic()
            if ends and consumer.assignment() and reached(consumer, args.topic, ends):
                break
            if time.monotonic() - last > args.idle:
                break
    finally:
        consumer.close()
    print(count)
    return 0


def main():
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--brokers", default="127.0.0.1:9092")
    ap.add_argument("--topic", required=True)
    ap.add_argument("--group", required=True)
    ap.add_argument("--redis-url", default="redis://127.0.0.1:6379/0")
    ap.add_argument("--hash", required=True, help="Redis hash of domain -> count")
    ap.add_argument("--end", default="", help="end offsets to stop at: partition:offset,...")
    ap.add_argument("--idle", type=float, default=10.0, help="stop after this many seconds without a message")
    return run(ap.parse_args())


if __name__ == "__main__":
    sys.exit(main())

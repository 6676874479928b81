"""A small durable job processor, built to be broken one guard at a time.

Delivery is at-least-once. Exactly-once *effects* come only from guards (see
runtime.policies), never from luck.
"""

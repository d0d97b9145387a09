"""Events in AWS's exact shapes, so a handler written here runs on Lambda unchanged.

One module per source: S3 object notifications, EventBridge schedules, SQS batches
(``http`` holds API Gateway's HTTP API events).
"""

from lakelet.functions.events.s3 import object_created_event
from lakelet.functions.events.scheduled import scheduled_event
from lakelet.functions.events.sqs import failed_message_ids, queue_arn, sqs_batch_event

__all__ = [
    "failed_message_ids",
    "object_created_event",
    "queue_arn",
    "scheduled_event",
    "sqs_batch_event",
]

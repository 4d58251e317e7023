"""Where a reconciliation keeps its progress: items of the ledger table, apart from the
commission items (their own ``pk`` prefix, ``reconcile#``; see ``keys.reconcile_checkpoint``).

- the checkpoint (``reconcile#<scope>#<window>``): the run's id, its window with the upper
  bound fixed when the run started, which listing it is on and the cursor within it, how
  many pages and payments are done, and whether it finished;
- one item per finished page (``<checkpoint>#page#<n>``): the page's results, compressed
  (zlib, base64), so a resumed run reports every payment of the window, not only those
  after the resume.

A page is written before the checkpoint moves past it, so a run stopped anywhere resumes
at the first page whose results were not kept; a page done twice keeps its later results.
"""

from __future__ import annotations

import base64
import json
import time
import zlib
from typing import TYPE_CHECKING, Any, ClassVar

from partnero_bridge.ledger import keys
from partnero_bridge.ledger.records import LedgerRecord

if TYPE_CHECKING:
    from mypy_boto3_dynamodb import DynamoDBClient


class Checkpoint(LedgerRecord):
    """A reconciliation's progress over one window of one source (or Ecwid store)."""

    entity_name: ClassVar[str] = "reconcile_checkpoint"

    run_id: str
    scope: str  # "stripe" or "ecwid:<storeId>"
    window_from: int  # Unix seconds, inclusive
    window_to: int  # Unix seconds, inclusive: fixed when the run started
    started_at: int  # Unix seconds
    stream: int = 0  # index of the listing being read (see the source's STREAMS)
    cursor: str | None = None  # where that listing goes on (a Stripe id, an Ecwid offset)
    pages: int = 0  # pages of results kept
    payments: int = 0  # payments compared so far
    finished: bool = False
    updated_at: int | None = None
    # Unix seconds: the table's TTL removes a run's working items (see WORKING_ITEM_SECONDS).
    expires_at: int | None = None


class ResultPage(LedgerRecord):
    """The results of one page of a run, as JSON rows compressed (zlib, then base64)."""

    entity_name: ClassVar[str] = "reconcile_page"

    run_id: str
    rows: str
    expires_at: int | None = None

    @classmethod
    def packed(cls, pk: str, run_id: str, rows: list[dict[str, Any]]) -> ResultPage:
        text = json.dumps(rows, separators=(",", ":")).encode()
        return cls(pk=pk, run_id=run_id, rows=base64.b64encode(zlib.compress(text, 6)).decode())

    def unpacked(self) -> list[dict[str, Any]]:
        rows: list[dict[str, Any]] = json.loads(zlib.decompress(base64.b64decode(self.rows)))
        return rows


# A run's checkpoint and result pages are working items, unlike the commission records:
# the ledger table's TTL (attribute ``expires_at``) removes them this long after their
# last write, far longer than any run or resume takes.
WORKING_ITEM_SECONDS = 35 * 24 * 3600


def _expires(now: float | None = None) -> int:
    return int(now if now is not None else time.time()) + WORKING_ITEM_SECONDS


def page_key(checkpoint_key: str, number: int) -> str:
    return f"{checkpoint_key}#page#{number}"


class Checkpoints:
    """Reads and writes reconciliation checkpoints in the ledger table."""

    def __init__(self, dynamodb: DynamoDBClient, table_name: str) -> None:
        self._dynamodb = dynamodb
        self._table = table_name

    def load(self, scope: str, window: str) -> Checkpoint | None:
        item = self._dynamodb.get_item(
            TableName=self._table,
            Key={"pk": {"S": keys.reconcile_checkpoint(scope, window)}},
            ConsistentRead=True,
        ).get("Item")
        return Checkpoint.from_item(item) if item else None

    def save(self, checkpoint: Checkpoint) -> None:
        kept = checkpoint.model_copy(update={"expires_at": _expires()})
        self._dynamodb.put_item(TableName=self._table, Item=kept.to_item())

    def save_page(self, checkpoint: Checkpoint, number: int, rows: list[dict[str, Any]]) -> None:
        page = ResultPage.packed(page_key(checkpoint.pk, number), checkpoint.run_id, rows)
        kept = page.model_copy(update={"expires_at": _expires()})
        self._dynamodb.put_item(TableName=self._table, Item=kept.to_item())

    def pages(self, checkpoint: Checkpoint) -> list[list[dict[str, Any]]]:
        """The kept pages of ``checkpoint``'s run, in order (pages of another run skipped)."""
        found: list[list[dict[str, Any]]] = []
        numbers = list(range(checkpoint.pages))
        for start in range(0, len(numbers), 100):  # BatchGetItem reads 100 keys at most
            wanted = {page_key(checkpoint.pk, n): n for n in numbers[start : start + 100]}
            request: Any = {
                self._table: {
                    "Keys": [{"pk": {"S": pk}} for pk in wanted],
                    "ConsistentRead": True,
                }
            }
            by_number: dict[int, list[dict[str, Any]]] = {}
            while request:
                answer = self._dynamodb.batch_get_item(RequestItems=request)
                for item in answer.get("Responses", {}).get(self._table, []):
                    page = ResultPage.from_item(item)
                    if page.run_id == checkpoint.run_id:
                        by_number[wanted[page.pk]] = page.unpacked()
                request = answer.get("UnprocessedKeys") or None
            found += [by_number[n] for n in sorted(by_number)]
        return found

"""Shards: how a run spreads its gateway calls and webhook deliveries over workers.

Issuing stays one transaction (gapless invoice numbers). Charging and webhook delivery wait on the
network, so billing_cycle_close maps its `charge_invoices` and `dispatch_webhooks` tasks, and
charge_retries its `retry_failed_charges`, over `BILLING_SHARDS` shards (Airflow's dynamic task
mapping); Celery workers run them at once.

- **The rule** has one home, the warehouse function `billing.shard_of(key, shards)`
  (sql/billing_schema.sql). A charging shard takes the invoices of its customers; a delivery
  shard takes its webhook endpoints. Delivery is sharded by endpoint, not by customer: an
  endpoint gets every customer's events, one at a time and in event order (SPEC §8), so one shard
  alone delivers to it. One shard, the default, is everything.
- **Re-runs.** A shard that runs again (cleared, retried, or beside an overlapping run) charges
  nothing twice and sends nothing twice, for the reasons one task never did: an attempt is
  recorded under its invoice × attempt key before the gateway call, and a delivery is claimed
  before it is sent.
- **The gateway pool.** A task that calls the gateway holds one slot of the Airflow pool
  `billing_gateway` per call it has in flight (`BILLING_CHARGE_CONCURRENCY`, at most the pool's
  size), and has no more in flight than it holds. The scheduler starts it only when that many
  slots are free, so however many workers and shards, at most `BILLING_GATEWAY_POOL_SLOTS` charges
  are in flight, and as many warehouse connections held for them (one per call in flight). With
  the defaults (16 and 16) shard tasks charge one after another; give the pool more slots to
  charge with several at once. `dag.test()` runs one task at a time and ignores pools; a team's
  Airflow creates the pool with `airflow pools set` (docker-compose.yml's airflow-init).
"""

from __future__ import annotations

from dataclasses import asdict, dataclass

from billing.settings import charge_concurrency, gateway_pool_slots, shards

GATEWAY_POOL = "billing_gateway"
GATEWAY_POOL_DESCRIPTION = "Payment gateway calls in flight across all workers (billing.shards)"


@dataclass(frozen=True)
class Shard:
    """Shard `index` of `count`; the default, 0 of 1, is everything."""

    index: int = 0
    count: int = 1

    def sql_params(self) -> dict[str, int]:
        """The rule's parameters in SQL: `billing.shard_of(key, %(shards)s) = %(shard)s`."""
        return {"shard": self.index, "shards": self.count}


ONE_SHARD = Shard()  # everything


def mapped_shards() -> list[dict[str, int]]:
    """Every shard, as a mapped task takes it (`Shard(**shard)`); read when the DAGs are parsed."""
    count = shards()
    return [asdict(Shard(index, count)) for index in range(count)]


def gateway_task_slots() -> int:
    """The pool slots a gateway task holds, one per call in flight: at most the pool's size, or the
    scheduler would never start it."""
    return min(charge_concurrency(), gateway_pool_slots())

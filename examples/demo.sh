#!/usr/bin/env sh
# invoiceflow on the example company, start to finish, with SQLite and no outside service: the
# records imported, the engine run at three moments of 2026-11-25/26 (`--now`), and what it
# delivered — Slack posts and email into local files (examples/sent/), tasks into the task
# manager — with the rule, the change and the record behind each. Starts afresh every time.
set -eu
cd "$(dirname "$0")/.."
cargo build --release --quiet
export INVOICEFLOW_DATABASE_URL=sqlite://examples/demo.db
invoiceflow() { ./target/release/invoiceflow --config examples/invoiceflow.toml "$@"; }
rm -f examples/demo.db examples/demo.db-wal examples/demo.db-shm
rm -rf examples/sent

echo "== 2026-11-25 08:00 New York: the example company's books are imported"
invoiceflow --now 2026-11-25T13:00:00Z import examples/data
echo
echo "== the engine's first tick: statuses of the day, rules, reminder steps, the outbox"
invoiceflow --now 2026-11-25T13:00:00Z run --once
echo
echo "== 2026-11-26 12:00 New York: QuickBooks reports a payment and a due date moved"
invoiceflow --now 2026-11-26T17:00:00Z import examples/updates
echo
echo "== the engine's next tick delivers what the rules decided"
invoiceflow --now 2026-11-26T17:01:00Z run --once
echo
echo "== what was sent, and why (invoiceflow history)"
invoiceflow history
echo
echo "== the Slack post, as the receiver got it (examples/sent/slack-finance.jsonl)"
cat examples/sent/slack-finance.jsonl
echo
echo "== the task manager (invoiceflow tasks list)"
invoiceflow tasks list

-- Indexes for lookups that otherwise cost more the more customers, renewals and
-- redemptions there are (each checked with EXPLAIN QUERY PLAN on SQLite; all of them work
-- on PostgreSQL too).

-- Only pending jobs are looked up by due time, and a settled job stays (one per paid
-- period), so the due index holds just the pending ones, in the order they are claimed.
-- It no longer starts with the status either: an equality on status looked selective to
-- SQLite's planner, which then walked every pending job to find one subscription's
-- instead of using the primary key.
DROP INDEX billing_jobs_due;
CREATE INDEX billing_jobs_pending_due ON billing_jobs (due_at, subscription_id)
    WHERE status = 'pending';

-- Whether a single-use code was redeemed: without it, a scan of every redemption.
CREATE INDEX discount_redemptions_by_discount ON discount_redemptions (discount_id);

-- A customer's viewing history, newest or oldest first, read a page at a time instead of
-- sorted whole.
CREATE INDEX playback_views_by_recency ON playback_views (customer_id, last_viewed_at, entry_id);

-- Transaction pages and the open basket a checkout reuses, in their order with its
-- tie-breaker, without a sort.
DROP INDEX transactions_by_customer;
CREATE INDEX transactions_by_customer ON transactions (customer_id, created_at, id);
DROP INDEX baskets_by_customer;
CREATE INDEX baskets_open_purchase ON baskets (customer_id, package_id, created_at, id)
    WHERE status = 'open' AND purpose = 'purchase';

-- A session by its token's fingerprint, newest first.
DROP INDEX sessions_by_fingerprint;
CREATE INDEX sessions_by_fingerprint ON sessions (token_fingerprint, customer_id, ended_at, started_at);

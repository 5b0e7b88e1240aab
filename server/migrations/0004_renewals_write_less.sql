-- Every renewal sets a subscription's status, mostly to the one it had. SQLite rewrites
-- the entry of every index that names a column a statement sets, so with the status in
-- this index each renewal also moved the subscription's entry, one more page written per
-- renewal. A customer has a handful of subscriptions: the customer alone finds them, and
-- the status is checked on the rows.
DROP INDEX subscriptions_by_customer;
CREATE INDEX subscriptions_by_customer ON subscriptions (customer_id);

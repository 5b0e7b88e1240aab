-- Purchases, subscriptions, money and the billing clock. Same portable dialect as 0001.

-- The card (or other method) a customer pays with, at one payment provider.
CREATE TABLE billing_profiles (
    customer_id TEXT PRIMARY KEY REFERENCES customers (id),
    provider TEXT NOT NULL,
    provider_customer_id TEXT NOT NULL,
    payment_method_id TEXT,
    card_brand TEXT,
    card_last4 TEXT,
    card_exp_month BIGINT,
    card_exp_year BIGINT,
    card_country TEXT,
    last_failed_at BIGINT,
    created_at BIGINT NOT NULL,
    updated_at BIGINT NOT NULL,
    CONSTRAINT billing_profiles_provider_customer_unique UNIQUE (provider, provider_customer_id)
);

-- A checkout in progress: one payment or setup intent at the provider.
CREATE TABLE baskets (
    id TEXT PRIMARY KEY,
    customer_id TEXT NOT NULL REFERENCES customers (id),
    kind TEXT NOT NULL,
    purpose TEXT NOT NULL,
    package_id TEXT REFERENCES packages (id),
    list_amount_minor BIGINT,
    amount_minor BIGINT,
    currency TEXT,
    discount_id TEXT,
    client_secret TEXT NOT NULL,
    status TEXT NOT NULL,
    subscription_id TEXT,
    created_at BIGINT NOT NULL,
    updated_at BIGINT NOT NULL,
    CONSTRAINT baskets_kind CHECK (kind IN ('payment', 'setup')),
    CONSTRAINT baskets_purpose CHECK (purpose IN ('purchase', 'billing_update')),
    CONSTRAINT baskets_status CHECK (status IN ('open', 'completed', 'canceled'))
);
CREATE INDEX baskets_by_customer ON baskets (customer_id, created_at);

CREATE TABLE subscriptions (
    id TEXT PRIMARY KEY,
    customer_id TEXT NOT NULL REFERENCES customers (id),
    package_id TEXT NOT NULL REFERENCES packages (id),
    provider TEXT NOT NULL,
    -- What the provider calls this purchase (the basket for Stripe); one subscription each.
    origin_reference TEXT NOT NULL,
    status TEXT NOT NULL,
    recurring BIGINT NOT NULL,
    auto_renew BIGINT NOT NULL,
    amount_minor BIGINT NOT NULL,
    currency TEXT NOT NULL,
    -- 0 is the first period (the trial, when there is one); each renewal adds one.
    current_period BIGINT NOT NULL,
    current_period_start BIGINT NOT NULL,
    current_period_end BIGINT NOT NULL,
    -- Access ends here; NULL while an auto-renewing subscription is in good standing or
    -- being retried, because then the billing clock decides when it ends.
    access_until BIGINT,
    cancel_at_period_end BIGINT NOT NULL DEFAULT 0,
    cancelled_at BIGINT,
    cancel_reason TEXT,
    ended_at BIGINT,
    last_failure_code TEXT,
    created_at BIGINT NOT NULL,
    updated_at BIGINT NOT NULL,
    CONSTRAINT subscriptions_status CHECK (
        status IN ('trialing', 'active', 'past_due', 'cancelled', 'expired', 'refunded')
    ),
    CONSTRAINT subscriptions_origin_unique UNIQUE (provider, origin_reference)
);
CREATE INDEX subscriptions_by_customer ON subscriptions (customer_id, status);

-- Every attempt to take money and every refund. Refunds are negative amounts, so the sum of
-- a customer's succeeded rows is what they paid.
CREATE TABLE transactions (
    id TEXT PRIMARY KEY,
    customer_id TEXT NOT NULL REFERENCES customers (id),
    subscription_id TEXT REFERENCES subscriptions (id),
    basket_id TEXT,
    kind TEXT NOT NULL,
    provider TEXT NOT NULL,
    -- The provider's id of this attempt (charge or refund); unique per provider, which
    -- makes recording the same attempt twice a no-op.
    external_id TEXT NOT NULL,
    reference TEXT NOT NULL,
    description TEXT NOT NULL,
    amount_minor BIGINT NOT NULL,
    currency TEXT NOT NULL,
    succeeded BIGINT NOT NULL,
    provider_message TEXT,
    period BIGINT,
    created_at BIGINT NOT NULL,
    CONSTRAINT transactions_kind CHECK (kind IN ('payment', 'refund')),
    CONSTRAINT transactions_external_unique UNIQUE (provider, external_id)
);
CREATE INDEX transactions_by_customer ON transactions (customer_id, created_at);
-- Invariant: at most one successful charge per subscription period.
CREATE UNIQUE INDEX transactions_one_payment_per_period
    ON transactions (subscription_id, period) WHERE kind = 'payment' AND succeeded = 1;

CREATE TABLE discounts (
    id TEXT PRIMARY KEY,
    code TEXT NOT NULL,
    kind TEXT NOT NULL,
    -- Percent (1 to 100) or an amount in minor units of `currency`.
    value BIGINT NOT NULL,
    currency TEXT,
    single_use BIGINT NOT NULL,
    valid_from BIGINT,
    valid_until BIGINT,
    active BIGINT NOT NULL,
    updated_at BIGINT NOT NULL,
    CONSTRAINT discounts_code_unique UNIQUE (code),
    CONSTRAINT discounts_kind CHECK (kind IN ('percent', 'fixed')),
    CONSTRAINT discounts_value CHECK (value > 0 AND (kind <> 'percent' OR value <= 100))
);

CREATE TABLE discount_packages (
    discount_id TEXT NOT NULL REFERENCES discounts (id),
    package_id TEXT NOT NULL,
    PRIMARY KEY (discount_id, package_id)
);

CREATE TABLE discount_redemptions (
    basket_id TEXT PRIMARY KEY REFERENCES baskets (id),
    discount_id TEXT NOT NULL REFERENCES discounts (id),
    customer_id TEXT NOT NULL REFERENCES customers (id),
    -- The discount's id when it is single-use, else NULL (NULLs never collide), so the
    -- database itself refuses a second redemption of a single-use code.
    single_use_key TEXT,
    redeemed_at BIGINT NOT NULL,
    CONSTRAINT discount_redemptions_single_use UNIQUE (single_use_key)
);

-- The billing clock: one row per subscription period that needs settling when it ends
-- (charge the renewal, or expire). Claimed by one worker at a time.
CREATE TABLE billing_jobs (
    subscription_id TEXT NOT NULL REFERENCES subscriptions (id),
    period BIGINT NOT NULL,
    due_at BIGINT NOT NULL,
    -- Failed charge attempts recorded for this period so far.
    failed_attempts BIGINT NOT NULL DEFAULT 0,
    status TEXT NOT NULL,
    claimed_by TEXT,
    claimed_until BIGINT,
    updated_at BIGINT NOT NULL,
    PRIMARY KEY (subscription_id, period),
    CONSTRAINT billing_jobs_status CHECK (status IN ('pending', 'done', 'abandoned'))
);
CREATE INDEX billing_jobs_due ON billing_jobs (status, due_at);

-- Provider notifications already applied, so a replay is recognised and ignored.
CREATE TABLE provider_events (
    provider TEXT NOT NULL,
    event_id TEXT NOT NULL,
    event_type TEXT NOT NULL,
    received_at BIGINT NOT NULL,
    PRIMARY KEY (provider, event_id)
);

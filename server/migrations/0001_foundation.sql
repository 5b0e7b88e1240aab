-- Portable SQL: the same file runs on SQLite and PostgreSQL. Times are unix epoch
-- milliseconds (BIGINT), identifiers are opaque TEXT, booleans are BIGINT 0/1.

CREATE TABLE customers (
    id TEXT PRIMARY KEY,
    issuer TEXT NOT NULL,
    subject TEXT NOT NULL,
    email TEXT NOT NULL,
    first_name TEXT NOT NULL,
    last_name TEXT NOT NULL,
    deleted BIGINT NOT NULL DEFAULT 0,
    -- Bumped by every session start: the UPDATE takes the customer's row lock (PostgreSQL)
    -- or the write lock (SQLite), which serialises device-lock checks for one customer.
    session_guard BIGINT NOT NULL DEFAULT 0,
    created_at BIGINT NOT NULL,
    updated_at BIGINT NOT NULL,
    CONSTRAINT customers_identity_unique UNIQUE (issuer, subject)
);

CREATE TABLE sessions (
    id TEXT PRIMARY KEY,
    customer_id TEXT NOT NULL REFERENCES customers (id),
    token_fingerprint TEXT,
    country_code TEXT,
    started_at BIGINT NOT NULL,
    last_seen_at BIGINT NOT NULL,
    expires_at BIGINT NOT NULL,
    ended_at BIGINT,
    end_reason TEXT
);
CREATE INDEX sessions_by_customer ON sessions (customer_id, ended_at, expires_at);
CREATE INDEX sessions_by_fingerprint ON sessions (token_fingerprint);

CREATE TABLE packages (
    id TEXT PRIMARY KEY,
    title TEXT NOT NULL,
    body TEXT NOT NULL,
    style TEXT,
    amount_minor BIGINT NOT NULL,
    currency TEXT NOT NULL,
    interval_count BIGINT NOT NULL,
    interval_unit TEXT NOT NULL,
    duration_count BIGINT,
    duration_unit TEXT,
    recurring BIGINT NOT NULL,
    trial_days BIGINT,
    sales_channel TEXT NOT NULL,
    display_order BIGINT NOT NULL,
    active BIGINT NOT NULL DEFAULT 1,
    created_at BIGINT NOT NULL,
    CONSTRAINT packages_amount_not_negative CHECK (amount_minor >= 0),
    CONSTRAINT packages_interval_positive CHECK (interval_count > 0),
    CONSTRAINT packages_sales_channel CHECK (sales_channel IN ('web', 'iap'))
);

CREATE TABLE package_entitlements (
    package_id TEXT NOT NULL REFERENCES packages (id),
    entitlement TEXT NOT NULL,
    PRIMARY KEY (package_id, entitlement)
);

CREATE TABLE package_countries (
    package_id TEXT NOT NULL REFERENCES packages (id),
    country_code TEXT NOT NULL,
    PRIMARY KEY (package_id, country_code)
);

CREATE TABLE package_iap_products (
    package_id TEXT NOT NULL REFERENCES packages (id),
    platform TEXT NOT NULL,
    product_id TEXT NOT NULL,
    PRIMARY KEY (package_id, platform),
    CONSTRAINT package_iap_products_unique UNIQUE (platform, product_id)
);

CREATE TABLE package_metadata (
    package_id TEXT NOT NULL REFERENCES packages (id),
    position BIGINT NOT NULL,
    name TEXT NOT NULL,
    code TEXT NOT NULL,
    value TEXT NOT NULL,
    PRIMARY KEY (package_id, code)
);

CREATE TABLE custom_fields (
    id TEXT PRIMARY KEY,
    label TEXT NOT NULL,
    required BIGINT NOT NULL,
    display_order BIGINT NOT NULL
);

CREATE TABLE customer_custom_values (
    customer_id TEXT NOT NULL REFERENCES customers (id),
    field_id TEXT NOT NULL REFERENCES custom_fields (id),
    value TEXT NOT NULL,
    PRIMARY KEY (customer_id, field_id)
);

CREATE TABLE playback_views (
    customer_id TEXT NOT NULL REFERENCES customers (id),
    entry_id TEXT NOT NULL,
    position_seconds BIGINT NOT NULL,
    last_viewed_at BIGINT NOT NULL,
    PRIMARY KEY (customer_id, entry_id)
);

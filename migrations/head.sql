-- bss rendered schema: revision=0001 sources=6c95d6f4528e64db45f132daebaff72b5298e03e9502499b28e037d17e89f3fa
-- Written by `make migration` (python -m stack.prepare render); do not edit.
CREATE TABLE public.alembic_version (
    version_num VARCHAR(32) NOT NULL,
    CONSTRAINT alembic_version_pkc PRIMARY KEY (version_num)
);

-- Running upgrade  -> 0000

CREATE SCHEMA IF NOT EXISTS catalog;

CREATE SCHEMA IF NOT EXISTS crm;

CREATE SCHEMA IF NOT EXISTS inventory;

CREATE SCHEMA IF NOT EXISTS payment;

CREATE SCHEMA IF NOT EXISTS ordering;

CREATE SCHEMA IF NOT EXISTS service_ordering;

CREATE SCHEMA IF NOT EXISTS subscription;

CREATE SCHEMA IF NOT EXISTS usage;

CREATE SCHEMA IF NOT EXISTS porting;

CREATE SCHEMA IF NOT EXISTS provisioning;

CREATE SCHEMA IF NOT EXISTS audit;

CREATE SCHEMA IF NOT EXISTS access;

CREATE SCHEMA IF NOT EXISTS notify;

CREATE SCHEMA IF NOT EXISTS staff;

CREATE SCHEMA IF NOT EXISTS web;

CREATE SCHEMA IF NOT EXISTS agent;

CREATE SCHEMA IF NOT EXISTS knowledge;

CREATE SCHEMA IF NOT EXISTS cardgw;

CREATE SEQUENCE IF NOT EXISTS ordering.product_order_seq;

CREATE SEQUENCE IF NOT EXISTS ordering.order_item_seq;

CREATE SEQUENCE IF NOT EXISTS service_ordering.service_order_seq;

CREATE SEQUENCE IF NOT EXISTS service_ordering.service_seq;

CREATE SEQUENCE IF NOT EXISTS service_ordering.provisioning_task_seq;

CREATE SEQUENCE IF NOT EXISTS subscription.subscription_seq;

CREATE SEQUENCE IF NOT EXISTS payment.payment_method_seq;

CREATE SEQUENCE IF NOT EXISTS payment.payment_seq;

CREATE SEQUENCE IF NOT EXISTS usage.usage_event_seq;

INSERT INTO public.alembic_version (version_num) VALUES ('0000') RETURNING public.alembic_version.version_num;

-- Running upgrade 0000 -> 0001

CREATE TABLE access.api_token (
    name VARCHAR(64) NOT NULL,
    role VARCHAR(20) NOT NULL,
    token_sha256 VARCHAR(64) NOT NULL,
    created_at TIMESTAMP WITH TIME ZONE DEFAULT now() NOT NULL,
    created_by VARCHAR(200) NOT NULL,
    last_used_at TIMESTAMP WITH TIME ZONE,
    revoked_at TIMESTAMP WITH TIME ZONE,
    PRIMARY KEY (name),
    UNIQUE (token_sha256)
);

CREATE TABLE agent.conversation (
    id VARCHAR(16) NOT NULL,
    actor VARCHAR(254) NOT NULL,
    profile VARCHAR(10) NOT NULL,
    customer_id VARCHAR(20),
    title VARCHAR(120) NOT NULL,
    tokens_used INTEGER NOT NULL,
    created_at TIMESTAMP WITH TIME ZONE NOT NULL,
    updated_at TIMESTAMP WITH TIME ZONE NOT NULL,
    PRIMARY KEY (id),
    CONSTRAINT ck_conversation_profile CHECK (profile IN ('operator', 'customer'))
);

CREATE INDEX ix_agent_conversation_actor ON agent.conversation (actor, updated_at);

CREATE TABLE audit.domain_event (
    id BIGSERIAL NOT NULL,
    event_id UUID NOT NULL,
    event_type VARCHAR(100) NOT NULL,
    aggregate_type VARCHAR(50) NOT NULL,
    aggregate_id VARCHAR(64) NOT NULL,
    occurred_at TIMESTAMP WITH TIME ZONE NOT NULL,
    actor VARCHAR(200) NOT NULL,
    channel VARCHAR(50) NOT NULL,
    service_identity VARCHAR(100) NOT NULL,
    trace_id VARCHAR(64),
    payload JSONB NOT NULL,
    PRIMARY KEY (id),
    UNIQUE (event_id)
);

CREATE INDEX ix_audit_domain_event_trace_id ON audit.domain_event (trace_id);

CREATE INDEX ix_domain_event_aggregate ON audit.domain_event (aggregate_type, aggregate_id, occurred_at);

CREATE INDEX ix_domain_event_type ON audit.domain_event (event_type, occurred_at);

CREATE TABLE cardgw.card_authorization (
    id VARCHAR(64) NOT NULL,
    idempotency_key VARCHAR(200) NOT NULL,
    token VARCHAR(120) NOT NULL,
    amount NUMERIC(12, 2) NOT NULL,
    currency VARCHAR(3) NOT NULL,
    approved BOOLEAN NOT NULL,
    decline_code VARCHAR(64),
    decline_reason VARCHAR(200),
    created_at TIMESTAMP WITH TIME ZONE NOT NULL,
    PRIMARY KEY (id),
    UNIQUE (idempotency_key)
);

CREATE TABLE catalog.product_specification (
    id VARCHAR(64) NOT NULL,
    name VARCHAR(200) NOT NULL,
    description VARCHAR(1000),
    brand VARCHAR(100),
    lifecycle_status VARCHAR(20) NOT NULL,
    created_at TIMESTAMP WITH TIME ZONE NOT NULL,
    updated_at TIMESTAMP WITH TIME ZONE NOT NULL,
    PRIMARY KEY (id)
);

CREATE TABLE catalog.promotion (
    code VARCHAR(32) NOT NULL,
    name VARCHAR(200) NOT NULL,
    discount_type VARCHAR(10) NOT NULL,
    discount_value NUMERIC(12, 2) NOT NULL,
    periods INTEGER,
    code_kind VARCHAR(30) NOT NULL,
    max_uses INTEGER,
    valid_from TIMESTAMP WITH TIME ZONE,
    valid_to TIMESTAMP WITH TIME ZONE,
    targeted BOOLEAN NOT NULL,
    state VARCHAR(20) NOT NULL,
    state_reason VARCHAR(20),
    uses INTEGER NOT NULL,
    created_by VARCHAR(200) NOT NULL,
    created_at TIMESTAMP WITH TIME ZONE NOT NULL,
    updated_at TIMESTAMP WITH TIME ZONE NOT NULL,
    PRIMARY KEY (code)
);

CREATE TABLE catalog.service_specification (
    id VARCHAR(64) NOT NULL,
    name VARCHAR(200) NOT NULL,
    kind VARCHAR(3) NOT NULL,
    parameters JSONB NOT NULL,
    PRIMARY KEY (id)
);

CREATE TABLE catalog.vas_offering (
    id VARCHAR(64) NOT NULL,
    name VARCHAR(200) NOT NULL,
    price_amount NUMERIC(12, 2) NOT NULL,
    currency VARCHAR(3) NOT NULL,
    allowance_type VARCHAR(20) NOT NULL,
    allowance_quantity BIGINT NOT NULL,
    allowance_unit VARCHAR(10) NOT NULL,
    expiry_hours INTEGER,
    lifecycle_status VARCHAR(20) NOT NULL,
    created_at TIMESTAMP WITH TIME ZONE NOT NULL,
    PRIMARY KEY (id)
);

CREATE TABLE crm.agent (
    id VARCHAR(16) NOT NULL,
    name VARCHAR(100) NOT NULL,
    email VARCHAR(254) NOT NULL,
    role VARCHAR(20) NOT NULL,
    status VARCHAR(20) NOT NULL,
    PRIMARY KEY (id),
    UNIQUE (email)
);

CREATE TABLE crm.idempotency_key (
    id SERIAL NOT NULL,
    scope VARCHAR(50) NOT NULL,
    key VARCHAR(200) NOT NULL,
    fingerprint VARCHAR(64) NOT NULL,
    resource_id VARCHAR(32) NOT NULL,
    created_at TIMESTAMP WITH TIME ZONE NOT NULL,
    PRIMARY KEY (id),
    CONSTRAINT uq_crm_idempotency_scope_key UNIQUE (scope, key)
);

CREATE TABLE crm.party (
    id VARCHAR(16) NOT NULL,
    party_type VARCHAR(20) NOT NULL,
    created_at TIMESTAMP WITH TIME ZONE NOT NULL,
    PRIMARY KEY (id)
);

CREATE TABLE crm.sla_policy (
    id SERIAL NOT NULL,
    ticket_type VARCHAR(40) NOT NULL,
    priority VARCHAR(20) NOT NULL,
    resolution_minutes INTEGER NOT NULL,
    PRIMARY KEY (id),
    CONSTRAINT uq_sla_policy_type_priority UNIQUE (ticket_type, priority)
);

CREATE TABLE inventory.esim_profile (
    iccid VARCHAR(19) NOT NULL,
    imsi VARCHAR(15) NOT NULL,
    ki_ref VARCHAR(64) NOT NULL,
    profile_state VARCHAR(16) NOT NULL,
    smdp_server VARCHAR(255) NOT NULL,
    matching_id VARCHAR(32) NOT NULL,
    activation_code VARCHAR(300) NOT NULL,
    reserved_for VARCHAR(64),
    assigned_msisdn VARCHAR(15),
    assigned_to_subscription_id VARCHAR(32),
    reserved_at TIMESTAMP WITH TIME ZONE,
    prepared_at TIMESTAMP WITH TIME ZONE,
    downloaded_at TIMESTAMP WITH TIME ZONE,
    installed_at TIMESTAMP WITH TIME ZONE,
    recycled_at TIMESTAMP WITH TIME ZONE,
    created_at TIMESTAMP WITH TIME ZONE,
    updated_at TIMESTAMP WITH TIME ZONE,
    PRIMARY KEY (iccid),
    CONSTRAINT ck_esim_profile_iccid CHECK (iccid ~ '^89[0-9]{17}$'),
    CONSTRAINT ck_esim_profile_ki_is_a_reference CHECK (ki_ref ~ '^hsm://ref/[0-9a-f-]{36}$'),
    CONSTRAINT ck_esim_profile_state CHECK (profile_state IN ('available', 'reserved', 'prepared', 'downloaded', 'installed')),
    UNIQUE (imsi),
    UNIQUE (matching_id)
);

CREATE INDEX ix_esim_profile_state_iccid ON inventory.esim_profile (profile_state, iccid);

CREATE INDEX ix_inventory_esim_profile_assigned_msisdn ON inventory.esim_profile (assigned_msisdn);

CREATE INDEX ix_inventory_esim_profile_assigned_to_subscription_id ON inventory.esim_profile (assigned_to_subscription_id);

CREATE UNIQUE INDEX ux_esim_profile_reserved_for ON inventory.esim_profile (reserved_for) WHERE reserved_for IS NOT NULL;

CREATE TABLE inventory.msisdn (
    msisdn VARCHAR(15) NOT NULL,
    status VARCHAR(16) NOT NULL,
    reserved_for VARCHAR(64),
    reserved_at TIMESTAMP WITH TIME ZONE,
    reserved_until TIMESTAMP WITH TIME ZONE,
    assigned_to_subscription_id VARCHAR(32),
    quarantine_until TIMESTAMP WITH TIME ZONE,
    updated_at TIMESTAMP WITH TIME ZONE,
    PRIMARY KEY (msisdn),
    CONSTRAINT ck_msisdn_digits CHECK (msisdn ~ '^[0-9]{8,15}$'),
    CONSTRAINT ck_msisdn_status CHECK (status IN ('available', 'held', 'reserved', 'assigned', 'quarantine', 'ported_out'))
);

CREATE INDEX ix_inventory_msisdn_assigned_to_subscription_id ON inventory.msisdn (assigned_to_subscription_id);

CREATE INDEX ix_msisdn_status_msisdn ON inventory.msisdn (status, msisdn);

CREATE UNIQUE INDEX ux_msisdn_reserved_for ON inventory.msisdn (reserved_for) WHERE reserved_for IS NOT NULL;

CREATE TABLE inventory.pool_watermark (
    resource VARCHAR(16) NOT NULL,
    low BOOLEAN NOT NULL,
    available INTEGER NOT NULL,
    threshold INTEGER NOT NULL,
    ticket_id VARCHAR(32),
    changed_at TIMESTAMP WITH TIME ZONE,
    PRIMARY KEY (resource)
);

CREATE TABLE knowledge.doc_chunk (
    id SERIAL NOT NULL,
    source VARCHAR(200) NOT NULL,
    anchor VARCHAR(200) NOT NULL,
    title VARCHAR(300) NOT NULL,
    kind VARCHAR(20) NOT NULL,
    position INTEGER NOT NULL,
    body TEXT NOT NULL,
    source_hash VARCHAR(64) NOT NULL,
    indexed_at TIMESTAMP WITH TIME ZONE NOT NULL,
    tsv TSVECTOR GENERATED ALWAYS AS (setweight(to_tsvector('english'::regconfig, coalesce(title, '')), 'A') || setweight(to_tsvector('english'::regconfig, coalesce(body, '')), 'B')) STORED,
    PRIMARY KEY (id),
    CONSTRAINT uq_knowledge_doc_chunk_source_anchor UNIQUE (source, anchor)
);

CREATE INDEX ix_knowledge_doc_chunk_source ON knowledge.doc_chunk (source);

CREATE INDEX ix_knowledge_doc_chunk_tsv ON knowledge.doc_chunk USING gin (tsv);

CREATE TABLE notify.outbox (
    id VARCHAR(16) NOT NULL,
    source_key VARCHAR(200) NOT NULL,
    source_event_id INTEGER,
    template VARCHAR(60) NOT NULL,
    recipient VARCHAR(254),
    sender VARCHAR(254) NOT NULL,
    subject VARCHAR(300) NOT NULL,
    body TEXT NOT NULL,
    customer_id VARCHAR(64),
    context JSONB NOT NULL,
    state VARCHAR(10) NOT NULL,
    attempts INTEGER NOT NULL,
    last_error VARCHAR(500),
    mailbox_file VARCHAR(300),
    created_at TIMESTAMP WITH TIME ZONE NOT NULL,
    next_attempt_at TIMESTAMP WITH TIME ZONE NOT NULL,
    sent_at TIMESTAMP WITH TIME ZONE,
    updated_at TIMESTAMP WITH TIME ZONE NOT NULL,
    PRIMARY KEY (id),
    CONSTRAINT ck_outbox_state CHECK (state IN ('queued', 'sent', 'failed', 'skipped')),
    UNIQUE (source_key)
);

CREATE INDEX ix_notify_outbox_source_event_id ON notify.outbox (source_event_id);

CREATE INDEX ix_outbox_customer ON notify.outbox (customer_id, created_at);

CREATE INDEX ix_outbox_due ON notify.outbox (next_attempt_at) WHERE state = 'queued';

CREATE TABLE ordering.product_order (
    id VARCHAR(20) NOT NULL,
    customer_id VARCHAR(64) NOT NULL,
    state VARCHAR(20) NOT NULL,
    offering_id VARCHAR(64) NOT NULL,
    price_id VARCHAR(64) NOT NULL,
    price_amount NUMERIC(12, 2) NOT NULL,
    price_currency VARCHAR(3) NOT NULL,
    msisdn_preference VARCHAR(8),
    promo_code VARCHAR(64),
    promo_amount NUMERIC(12, 2),
    promo_discount_type VARCHAR(10),
    promo_discount_value NUMERIC(12, 2),
    promo_periods INTEGER,
    note VARCHAR(1000),
    service_order_id VARCHAR(20),
    subscription_id VARCHAR(20),
    som_started_at TIMESTAMP WITH TIME ZONE,
    failure_reason VARCHAR(1000),
    idempotency_key VARCHAR(128),
    created_at TIMESTAMP WITH TIME ZONE NOT NULL,
    completed_at TIMESTAMP WITH TIME ZONE,
    updated_at TIMESTAMP WITH TIME ZONE NOT NULL,
    PRIMARY KEY (id),
    UNIQUE (idempotency_key)
);

CREATE INDEX ix_product_order_customer ON ordering.product_order (customer_id, created_at);

CREATE INDEX ix_product_order_state ON ordering.product_order (state, created_at);

CREATE TABLE payment.idempotency_key (
    id SERIAL NOT NULL,
    scope VARCHAR(50) NOT NULL,
    key VARCHAR(200) NOT NULL,
    fingerprint VARCHAR(64) NOT NULL,
    resource_id VARCHAR(32) NOT NULL,
    created_at TIMESTAMP WITH TIME ZONE NOT NULL,
    PRIMARY KEY (id),
    CONSTRAINT uq_payment_idempotency_scope_key UNIQUE (scope, key)
);

CREATE TABLE payment.payment_method (
    id VARCHAR(16) NOT NULL,
    customer_id VARCHAR(16) NOT NULL,
    type VARCHAR(20) NOT NULL,
    token VARCHAR(120) NOT NULL,
    token_provider VARCHAR(20) NOT NULL,
    last4 VARCHAR(4),
    brand VARCHAR(20) NOT NULL,
    exp_month INTEGER NOT NULL,
    exp_year INTEGER NOT NULL,
    name_on_card VARCHAR(100),
    is_default BOOLEAN NOT NULL,
    status VARCHAR(20) NOT NULL,
    created_at TIMESTAMP WITH TIME ZONE NOT NULL,
    removed_at TIMESTAMP WITH TIME ZONE,
    PRIMARY KEY (id),
    UNIQUE (token)
);

CREATE INDEX ix_payment_method_customer ON payment.payment_method (customer_id, status);

CREATE UNIQUE INDEX uq_payment_method_one_default ON payment.payment_method (customer_id) WHERE is_default AND status = 'active';

CREATE TABLE porting.port_request (
    id VARCHAR(16) NOT NULL,
    direction VARCHAR(10) NOT NULL,
    donor_carrier VARCHAR(64) NOT NULL,
    recipient_carrier VARCHAR(64) NOT NULL,
    msisdn VARCHAR(15) NOT NULL,
    requested_port_date TIMESTAMP WITH TIME ZONE NOT NULL,
    customer_id VARCHAR(64),
    offering_id VARCHAR(64),
    subscription_id VARCHAR(20),
    order_id VARCHAR(20),
    previous_msisdn VARCHAR(15),
    state VARCHAR(16) NOT NULL,
    reason VARCHAR(200),
    reason_code VARCHAR(80),
    approved_by VARCHAR(100),
    idempotency_key VARCHAR(200),
    created_at TIMESTAMP WITH TIME ZONE NOT NULL,
    updated_at TIMESTAMP WITH TIME ZONE NOT NULL,
    validated_at TIMESTAMP WITH TIME ZONE,
    approved_at TIMESTAMP WITH TIME ZONE,
    completed_at TIMESTAMP WITH TIME ZONE,
    ended_at TIMESTAMP WITH TIME ZONE,
    PRIMARY KEY (id),
    CONSTRAINT ck_port_request_direction CHECK (direction IN ('port_in', 'port_out')),
    CONSTRAINT ck_port_request_msisdn CHECK (msisdn ~ '^[0-9]{8}$'),
    CONSTRAINT ck_port_request_state CHECK (state IN ('acknowledged', 'validated', 'approved', 'completed', 'rejected', 'failed'))
);

CREATE INDEX ix_port_request_state_created ON porting.port_request (state, created_at);

CREATE INDEX ix_porting_port_request_customer_id ON porting.port_request (customer_id);

CREATE INDEX ix_porting_port_request_subscription_id ON porting.port_request (subscription_id);

CREATE UNIQUE INDEX ux_port_request_idempotency_key ON porting.port_request (idempotency_key) WHERE idempotency_key IS NOT NULL;

CREATE UNIQUE INDEX ux_port_request_live_msisdn ON porting.port_request (msisdn) WHERE state IN ('acknowledged', 'validated', 'approved');

CREATE TABLE provisioning.fault_rule (
    id VARCHAR(64) NOT NULL,
    task_type VARCHAR(40) NOT NULL,
    fault_type VARCHAR(40) NOT NULL,
    probability FLOAT NOT NULL,
    enabled BOOLEAN NOT NULL,
    updated_at TIMESTAMP WITH TIME ZONE NOT NULL,
    PRIMARY KEY (id),
    CONSTRAINT ck_fault_rule_fault_fits_task CHECK ((task_type IN ('PAYMENT_CHARGE', 'PAYMENT_REFUND')) = (fault_type IN ('decline', 'timeout', 'unavailable', 'lost_response'))),
    CONSTRAINT ck_fault_rule_fault_type CHECK (fault_type IN ('fail_first_attempt', 'fail_always', 'stuck', 'slow', 'decline', 'timeout', 'unavailable', 'lost_response', 'wrong_account', 'number_locked', 'donor_refuses')),
    CONSTRAINT ck_fault_rule_np_fault_fits_task CHECK (fault_type NOT IN ('wrong_account', 'number_locked', 'donor_refuses') OR task_type IN ('NP_VALIDATE')),
    CONSTRAINT ck_fault_rule_task_type CHECK (task_type IN ('HLR_PROVISION', 'PCRF_POLICY_PUSH', 'OCS_BALANCE_INIT', 'ESIM_PROFILE_PREPARE', 'HLR_DEPROVISION', 'PCRF_POLICY_REMOVE', 'OCS_BALANCE_REMOVE', 'PCRF_BAR', 'PCRF_UNBAR', 'PAYMENT_CHARGE', 'PAYMENT_REFUND', 'NP_VALIDATE', 'EMAIL_SEND')),
    CONSTRAINT ck_fault_rule_probability CHECK (probability >= 0 AND probability <= 1),
    CONSTRAINT uq_fault_rule_task_fault UNIQUE (task_type, fault_type)
);

CREATE TABLE service_ordering.service_order (
    id VARCHAR(20) NOT NULL,
    order_id VARCHAR(20) NOT NULL,
    customer_id VARCHAR(64) NOT NULL,
    offering_id VARCHAR(64) NOT NULL,
    state VARCHAR(20) NOT NULL,
    failure_reason VARCHAR(1000),
    created_at TIMESTAMP WITH TIME ZONE NOT NULL,
    started_at TIMESTAMP WITH TIME ZONE,
    completed_at TIMESTAMP WITH TIME ZONE,
    updated_at TIMESTAMP WITH TIME ZONE NOT NULL,
    PRIMARY KEY (id),
    UNIQUE (order_id)
);

CREATE INDEX ix_service_order_state ON service_ordering.service_order (state, created_at);

CREATE INDEX ix_service_ordering_service_order_customer_id ON service_ordering.service_order (customer_id);

CREATE TABLE staff.operator (
    id VARCHAR(16) NOT NULL,
    email VARCHAR(254) NOT NULL,
    name VARCHAR(200) NOT NULL,
    role VARCHAR(20) NOT NULL,
    password_hash VARCHAR(512) NOT NULL,
    failed_attempts INTEGER NOT NULL,
    locked_until TIMESTAMP WITH TIME ZONE,
    disabled_at TIMESTAMP WITH TIME ZONE,
    created_at TIMESTAMP WITH TIME ZONE DEFAULT now() NOT NULL,
    created_by VARCHAR(200) NOT NULL,
    last_login_at TIMESTAMP WITH TIME ZONE,
    PRIMARY KEY (id),
    UNIQUE (email)
);

CREATE TABLE subscription.subscription (
    id VARCHAR(20) NOT NULL,
    customer_id VARCHAR(64) NOT NULL,
    offering_id VARCHAR(64) NOT NULL,
    order_id VARCHAR(20) NOT NULL,
    msisdn VARCHAR(15) NOT NULL,
    iccid VARCHAR(22) NOT NULL,
    service_order_id VARCHAR(20),
    state VARCHAR(20) NOT NULL,
    state_reason VARCHAR(200),
    activated_at TIMESTAMP WITH TIME ZONE,
    current_period_start TIMESTAMP WITH TIME ZONE NOT NULL,
    current_period_end TIMESTAMP WITH TIME ZONE NOT NULL,
    price_id VARCHAR(64) NOT NULL,
    price_amount NUMERIC(12, 2) NOT NULL,
    price_currency VARCHAR(3) NOT NULL,
    pending_offering_id VARCHAR(64),
    pending_price_id VARCHAR(64),
    terminated_at TIMESTAMP WITH TIME ZONE,
    created_at TIMESTAMP WITH TIME ZONE NOT NULL,
    updated_at TIMESTAMP WITH TIME ZONE NOT NULL,
    PRIMARY KEY (id),
    UNIQUE (order_id)
);

CREATE INDEX ix_subscription_state_period_end ON subscription.subscription (state, current_period_end);

CREATE INDEX ix_subscription_subscription_customer_id ON subscription.subscription (customer_id);

CREATE UNIQUE INDEX uq_subscription_live_iccid ON subscription.subscription (iccid) WHERE state <> 'terminated';

CREATE UNIQUE INDEX uq_subscription_live_msisdn ON subscription.subscription (msisdn) WHERE state <> 'terminated';

CREATE TABLE usage.usage_event (
    id VARCHAR(64) NOT NULL,
    seq BIGINT GENERATED BY DEFAULT AS IDENTITY,
    msisdn VARCHAR(15) NOT NULL,
    subscription_id VARCHAR(20) NOT NULL,
    usage_type VARCHAR(10) NOT NULL,
    quantity BIGINT NOT NULL,
    original_quantity NUMERIC NOT NULL,
    original_unit VARCHAR(10) NOT NULL,
    roaming BOOLEAN NOT NULL,
    usage_date TIMESTAMP WITH TIME ZONE NOT NULL,
    allowance_type VARCHAR(20) NOT NULL,
    in_bundle BIGINT NOT NULL,
    status VARCHAR(10) NOT NULL,
    rated_at TIMESTAMP WITH TIME ZONE NOT NULL,
    PRIMARY KEY (id)
);

CREATE INDEX ix_usage_event_subscription_seq ON usage.usage_event (subscription_id, seq);

CREATE TABLE web.login_code (
    id BIGSERIAL NOT NULL,
    portal VARCHAR(20) NOT NULL,
    email VARCHAR(254) NOT NULL,
    subject VARCHAR(64),
    code_hash VARCHAR(64) NOT NULL,
    state VARCHAR(12) NOT NULL,
    attempts INTEGER NOT NULL,
    ip VARCHAR(64),
    created_at TIMESTAMP WITH TIME ZONE NOT NULL,
    expires_at TIMESTAMP WITH TIME ZONE NOT NULL,
    used_at TIMESTAMP WITH TIME ZONE,
    PRIMARY KEY (id),
    CONSTRAINT ck_login_code_state CHECK (state IN ('active', 'used', 'burned', 'superseded'))
);

CREATE INDEX ix_web_login_code_email ON web.login_code (portal, email, state);

CREATE TABLE web.rate_event (
    id BIGSERIAL NOT NULL,
    bucket VARCHAR(30) NOT NULL,
    key VARCHAR(254) NOT NULL,
    at TIMESTAMP WITH TIME ZONE NOT NULL,
    PRIMARY KEY (id)
);

CREATE INDEX ix_web_rate_event_key ON web.rate_event (bucket, key, at);

CREATE TABLE web.session (
    id VARCHAR(64) NOT NULL,
    portal VARCHAR(20) NOT NULL,
    subject VARCHAR(64),
    email VARCHAR(254),
    csrf_token VARCHAR(64) NOT NULL,
    data JSONB DEFAULT '{}'::jsonb NOT NULL,
    ip VARCHAR(64),
    created_at TIMESTAMP WITH TIME ZONE NOT NULL,
    last_seen_at TIMESTAMP WITH TIME ZONE NOT NULL,
    authenticated_at TIMESTAMP WITH TIME ZONE,
    expires_at TIMESTAMP WITH TIME ZONE NOT NULL,
    PRIMARY KEY (id)
);

CREATE INDEX ix_web_session_subject ON web.session (portal, subject);

CREATE TABLE agent.message (
    id BIGSERIAL NOT NULL,
    session_id VARCHAR(16) NOT NULL,
    role VARCHAR(10) NOT NULL,
    content TEXT DEFAULT '' NOT NULL,
    tool_calls JSONB DEFAULT '[]'::jsonb NOT NULL,
    tool_call_id VARCHAR(120),
    name VARCHAR(80),
    created_at TIMESTAMP WITH TIME ZONE NOT NULL,
    PRIMARY KEY (id),
    CONSTRAINT ck_message_role CHECK (role IN ('user', 'assistant', 'tool')),
    FOREIGN KEY(session_id) REFERENCES agent.conversation (id) ON DELETE CASCADE
);

CREATE INDEX ix_agent_message_session ON agent.message (session_id, id);

CREATE TABLE agent.proposal (
    id VARCHAR(16) NOT NULL,
    session_id VARCHAR(16) NOT NULL,
    tool VARCHAR(80) NOT NULL,
    args JSONB DEFAULT '{}'::jsonb NOT NULL,
    summary TEXT DEFAULT '' NOT NULL,
    state VARCHAR(10) NOT NULL,
    role VARCHAR(20) NOT NULL,
    result JSONB,
    decided_by VARCHAR(254),
    created_at TIMESTAMP WITH TIME ZONE NOT NULL,
    decided_at TIMESTAMP WITH TIME ZONE,
    PRIMARY KEY (id),
    CONSTRAINT ck_proposal_state CHECK (state IN ('pending', 'confirmed', 'cancelled', 'expired', 'failed')),
    FOREIGN KEY(session_id) REFERENCES agent.conversation (id) ON DELETE CASCADE
);

CREATE INDEX ix_agent_proposal_session ON agent.proposal (session_id, state);

CREATE TABLE cardgw.card_refund (
    id VARCHAR(64) NOT NULL,
    idempotency_key VARCHAR(200) NOT NULL,
    authorization_id VARCHAR(64) NOT NULL,
    amount NUMERIC(12, 2) NOT NULL,
    created_at TIMESTAMP WITH TIME ZONE NOT NULL,
    PRIMARY KEY (id),
    FOREIGN KEY(authorization_id) REFERENCES cardgw.card_authorization (id),
    UNIQUE (authorization_id),
    UNIQUE (idempotency_key)
);

CREATE TABLE catalog.product_offering (
    id VARCHAR(64) NOT NULL,
    name VARCHAR(200) NOT NULL,
    description VARCHAR(1000),
    spec_id VARCHAR(64) NOT NULL,
    is_bundle BOOLEAN NOT NULL,
    is_sellable BOOLEAN NOT NULL,
    lifecycle_status VARCHAR(20) NOT NULL,
    valid_from TIMESTAMP WITH TIME ZONE,
    valid_to TIMESTAMP WITH TIME ZONE,
    created_at TIMESTAMP WITH TIME ZONE NOT NULL,
    updated_at TIMESTAMP WITH TIME ZONE NOT NULL,
    PRIMARY KEY (id),
    FOREIGN KEY(spec_id) REFERENCES catalog.product_specification (id)
);

CREATE TABLE catalog.promotion_claim (
    id BIGSERIAL NOT NULL,
    promotion_code VARCHAR(32) NOT NULL,
    order_id VARCHAR(20) NOT NULL,
    customer_id VARCHAR(64) NOT NULL,
    subscription_id VARCHAR(20),
    state VARCHAR(10) NOT NULL,
    discount_type VARCHAR(10) NOT NULL,
    discount_value NUMERIC(12, 2) NOT NULL,
    periods_remaining INTEGER NOT NULL,
    reason VARCHAR(200),
    claimed_at TIMESTAMP WITH TIME ZONE NOT NULL,
    settled_at TIMESTAMP WITH TIME ZONE,
    PRIMARY KEY (id),
    FOREIGN KEY(promotion_code) REFERENCES catalog.promotion (code),
    UNIQUE (order_id)
);

CREATE INDEX ix_promotion_claim_code_customer ON catalog.promotion_claim (promotion_code, customer_id, state);

CREATE INDEX ix_promotion_claim_subscription ON catalog.promotion_claim (subscription_id, state);

CREATE TABLE catalog.promotion_eligibility (
    id BIGSERIAL NOT NULL,
    promotion_code VARCHAR(32) NOT NULL,
    customer_id VARCHAR(64) NOT NULL,
    created_by VARCHAR(200) NOT NULL,
    created_at TIMESTAMP WITH TIME ZONE NOT NULL,
    PRIMARY KEY (id),
    FOREIGN KEY(promotion_code) REFERENCES catalog.promotion (code),
    UNIQUE (promotion_code, customer_id)
);

CREATE TABLE crm.contact_medium (
    id VARCHAR(16) NOT NULL,
    party_id VARCHAR(16) NOT NULL,
    medium_type VARCHAR(10) NOT NULL,
    value VARCHAR(254) NOT NULL,
    is_primary BOOLEAN NOT NULL,
    valid_from TIMESTAMP WITH TIME ZONE NOT NULL,
    valid_to TIMESTAMP WITH TIME ZONE,
    PRIMARY KEY (id),
    FOREIGN KEY(party_id) REFERENCES crm.party (id)
);

CREATE INDEX ix_crm_contact_medium_party_id ON crm.contact_medium (party_id);

CREATE UNIQUE INDEX uq_contact_medium_active_email ON crm.contact_medium (lower(value)) WHERE medium_type = 'email' AND valid_to IS NULL;

CREATE TABLE crm.customer (
    id VARCHAR(16) NOT NULL,
    party_id VARCHAR(16) NOT NULL,
    status VARCHAR(20) NOT NULL,
    status_reason VARCHAR(500),
    customer_since TIMESTAMP WITH TIME ZONE NOT NULL,
    kyc_status VARCHAR(20) NOT NULL,
    kyc_verified_at TIMESTAMP WITH TIME ZONE,
    kyc_verification_method VARCHAR(30),
    kyc_reference VARCHAR(100),
    created_at TIMESTAMP WITH TIME ZONE NOT NULL,
    updated_at TIMESTAMP WITH TIME ZONE NOT NULL,
    PRIMARY KEY (id),
    FOREIGN KEY(party_id) REFERENCES crm.party (id),
    UNIQUE (party_id)
);

CREATE INDEX ix_crm_customer_status ON crm.customer (status);

CREATE TABLE crm.individual (
    party_id VARCHAR(16) NOT NULL,
    given_name VARCHAR(100) NOT NULL,
    family_name VARCHAR(100) NOT NULL,
    date_of_birth DATE,
    PRIMARY KEY (party_id),
    FOREIGN KEY(party_id) REFERENCES crm.party (id)
);

CREATE TABLE ordering.order_state_history (
    id BIGSERIAL NOT NULL,
    order_id VARCHAR(20) NOT NULL,
    from_state VARCHAR(20),
    to_state VARCHAR(20) NOT NULL,
    at TIMESTAMP WITH TIME ZONE NOT NULL,
    actor VARCHAR(200) NOT NULL,
    reason VARCHAR(1000),
    PRIMARY KEY (id),
    FOREIGN KEY(order_id) REFERENCES ordering.product_order (id)
);

CREATE INDEX ix_order_state_history_order ON ordering.order_state_history (order_id, id);

CREATE TABLE ordering.product_order_item (
    id VARCHAR(20) NOT NULL,
    order_id VARCHAR(20) NOT NULL,
    action VARCHAR(10) NOT NULL,
    offering_id VARCHAR(64) NOT NULL,
    state VARCHAR(20) NOT NULL,
    subscription_id VARCHAR(20),
    PRIMARY KEY (id),
    FOREIGN KEY(order_id) REFERENCES ordering.product_order (id)
);

CREATE INDEX ix_ordering_product_order_item_order_id ON ordering.product_order_item (order_id);

CREATE TABLE payment.payment (
    id VARCHAR(16) NOT NULL,
    customer_id VARCHAR(16) NOT NULL,
    payment_method_id VARCHAR(16) NOT NULL,
    amount NUMERIC(12, 2) NOT NULL,
    currency VARCHAR(3) NOT NULL,
    purpose VARCHAR(20) NOT NULL,
    status VARCHAR(20) NOT NULL,
    gateway_ref VARCHAR(64),
    decline_code VARCHAR(64),
    decline_reason VARCHAR(200),
    idempotency_key VARCHAR(200) NOT NULL,
    attempted_at TIMESTAMP WITH TIME ZONE NOT NULL,
    refunded_at TIMESTAMP WITH TIME ZONE,
    refund_ref VARCHAR(64),
    PRIMARY KEY (id),
    CONSTRAINT ck_payment_purpose CHECK (purpose IN ('activation', 'renewal', 'vas')),
    CONSTRAINT ck_payment_status CHECK (status IN ('approved', 'declined', 'errored', 'refunded')),
    CONSTRAINT ck_payment_amount_positive CHECK (amount > 0),
    FOREIGN KEY(payment_method_id) REFERENCES payment.payment_method (id),
    UNIQUE (idempotency_key)
);

CREATE INDEX ix_payment_customer ON payment.payment (customer_id, attempted_at);

CREATE TABLE service_ordering.service (
    id VARCHAR(20) NOT NULL,
    service_order_id VARCHAR(20) NOT NULL,
    subscription_id VARCHAR(20),
    spec_id VARCHAR(64) NOT NULL,
    name VARCHAR(50) NOT NULL,
    type VARCHAR(3) NOT NULL,
    parent_service_id VARCHAR(20),
    state VARCHAR(20) NOT NULL,
    characteristics JSONB NOT NULL,
    created_at TIMESTAMP WITH TIME ZONE NOT NULL,
    activated_at TIMESTAMP WITH TIME ZONE,
    terminated_at TIMESTAMP WITH TIME ZONE,
    updated_at TIMESTAMP WITH TIME ZONE NOT NULL,
    PRIMARY KEY (id),
    FOREIGN KEY(service_order_id) REFERENCES service_ordering.service_order (id)
);

CREATE INDEX ix_service_ordering_service_service_order_id ON service_ordering.service (service_order_id);

CREATE INDEX ix_service_ordering_service_subscription_id ON service_ordering.service (subscription_id);

CREATE TABLE service_ordering.service_order_item (
    id BIGSERIAL NOT NULL,
    service_order_id VARCHAR(20) NOT NULL,
    action VARCHAR(10) NOT NULL,
    spec_id VARCHAR(64) NOT NULL,
    service_id VARCHAR(20) NOT NULL,
    PRIMARY KEY (id),
    FOREIGN KEY(service_order_id) REFERENCES service_ordering.service_order (id)
);

CREATE INDEX ix_service_ordering_service_order_item_service_order_id ON service_ordering.service_order_item (service_order_id);

CREATE TABLE subscription.bundle_balance (
    id BIGSERIAL NOT NULL,
    subscription_id VARCHAR(20) NOT NULL,
    allowance_type VARCHAR(20) NOT NULL,
    total BIGINT NOT NULL,
    consumed BIGINT NOT NULL,
    unit VARCHAR(10) NOT NULL,
    period_start TIMESTAMP WITH TIME ZONE NOT NULL,
    period_end TIMESTAMP WITH TIME ZONE NOT NULL,
    PRIMARY KEY (id),
    FOREIGN KEY(subscription_id) REFERENCES subscription.subscription (id),
    UNIQUE (subscription_id, allowance_type)
);

CREATE TABLE subscription.price_migration (
    id BIGSERIAL NOT NULL,
    subscription_id VARCHAR(20) NOT NULL,
    offering_id VARCHAR(64) NOT NULL,
    from_price_id VARCHAR(64) NOT NULL,
    new_price_id VARCHAR(64) NOT NULL,
    new_amount NUMERIC(12, 2) NOT NULL,
    currency VARCHAR(3) NOT NULL,
    effective_at TIMESTAMP WITH TIME ZONE NOT NULL,
    status VARCHAR(12) NOT NULL,
    scheduled_at TIMESTAMP WITH TIME ZONE NOT NULL,
    resolved_at TIMESTAMP WITH TIME ZONE,
    PRIMARY KEY (id),
    FOREIGN KEY(subscription_id) REFERENCES subscription.subscription (id)
);

CREATE UNIQUE INDEX uq_price_migration_pending ON subscription.price_migration (subscription_id) WHERE status = 'pending';

CREATE TABLE subscription.subscription_renewal (
    id BIGSERIAL NOT NULL,
    subscription_id VARCHAR(20) NOT NULL,
    kind VARCHAR(10) NOT NULL,
    status VARCHAR(10) NOT NULL,
    idempotency_key VARCHAR(200) NOT NULL,
    due_at TIMESTAMP WITH TIME ZONE NOT NULL,
    attempted_at TIMESTAMP WITH TIME ZONE NOT NULL,
    offering_id VARCHAR(64) NOT NULL,
    price_id VARCHAR(64) NOT NULL,
    amount NUMERIC(12, 2) NOT NULL,
    currency VARCHAR(3) NOT NULL,
    payment_id VARCHAR(16),
    period_start TIMESTAMP WITH TIME ZONE,
    period_end TIMESTAMP WITH TIME ZONE,
    reason VARCHAR(200),
    PRIMARY KEY (id),
    FOREIGN KEY(subscription_id) REFERENCES subscription.subscription (id),
    UNIQUE (idempotency_key)
);

CREATE INDEX ix_subscription_subscription_renewal_subscription_id ON subscription.subscription_renewal (subscription_id);

CREATE UNIQUE INDEX uq_subscription_renewal_paid_period ON subscription.subscription_renewal (subscription_id, due_at) WHERE status = 'renewed';

CREATE TABLE subscription.subscription_state_history (
    id BIGSERIAL NOT NULL,
    subscription_id VARCHAR(20) NOT NULL,
    from_state VARCHAR(20),
    to_state VARCHAR(20) NOT NULL,
    at TIMESTAMP WITH TIME ZONE NOT NULL,
    actor VARCHAR(200) NOT NULL,
    reason VARCHAR(200),
    PRIMARY KEY (id),
    FOREIGN KEY(subscription_id) REFERENCES subscription.subscription (id)
);

CREATE INDEX ix_subscription_state_history_sub ON subscription.subscription_state_history (subscription_id, id);

CREATE TABLE subscription.vas_purchase (
    id VARCHAR(32) NOT NULL,
    subscription_id VARCHAR(20) NOT NULL,
    vas_offering_id VARCHAR(64) NOT NULL,
    payment_id VARCHAR(16) NOT NULL,
    idempotency_key VARCHAR(200) NOT NULL,
    allowance_type VARCHAR(20) NOT NULL,
    allowance_added BIGINT NOT NULL,
    applied_at TIMESTAMP WITH TIME ZONE NOT NULL,
    expires_at TIMESTAMP WITH TIME ZONE,
    restored_remaining BIGINT,
    ended_at TIMESTAMP WITH TIME ZONE,
    PRIMARY KEY (id),
    FOREIGN KEY(subscription_id) REFERENCES subscription.subscription (id),
    UNIQUE (idempotency_key)
);

CREATE INDEX ix_vas_purchase_sub ON subscription.vas_purchase (subscription_id, applied_at);

CREATE TABLE catalog.bundle_allowance (
    id VARCHAR(64) NOT NULL,
    offering_id VARCHAR(64) NOT NULL,
    allowance_type VARCHAR(20) NOT NULL,
    quantity BIGINT NOT NULL,
    unit VARCHAR(10) NOT NULL,
    PRIMARY KEY (id),
    FOREIGN KEY(offering_id) REFERENCES catalog.product_offering (id),
    UNIQUE (offering_id, allowance_type)
);

CREATE INDEX ix_catalog_bundle_allowance_offering_id ON catalog.bundle_allowance (offering_id);

CREATE TABLE catalog.product_offering_price (
    id VARCHAR(64) NOT NULL,
    offering_id VARCHAR(64) NOT NULL,
    price_type VARCHAR(20) NOT NULL,
    recurring_period_length INTEGER NOT NULL,
    recurring_period_type VARCHAR(20) NOT NULL,
    amount NUMERIC(12, 2) NOT NULL,
    currency VARCHAR(3) NOT NULL,
    valid_from TIMESTAMP WITH TIME ZONE,
    valid_to TIMESTAMP WITH TIME ZONE,
    created_at TIMESTAMP WITH TIME ZONE NOT NULL,
    PRIMARY KEY (id),
    FOREIGN KEY(offering_id) REFERENCES catalog.product_offering (id)
);

CREATE INDEX ix_product_offering_price_offering ON catalog.product_offering_price (offering_id, valid_from);

CREATE TABLE catalog.product_to_service_mapping (
    offering_id VARCHAR(64) NOT NULL,
    cfs_spec_id VARCHAR(64) NOT NULL,
    rfs_spec_ids VARCHAR(64)[] NOT NULL,
    PRIMARY KEY (offering_id),
    FOREIGN KEY(cfs_spec_id) REFERENCES catalog.service_specification (id),
    FOREIGN KEY(offering_id) REFERENCES catalog.product_offering (id)
);

CREATE TABLE crm.customer_identity (
    id SERIAL NOT NULL,
    customer_id VARCHAR(16) NOT NULL,
    document_type VARCHAR(20) NOT NULL,
    document_number_hash VARCHAR(64) NOT NULL,
    document_country VARCHAR(3) NOT NULL,
    date_of_birth DATE,
    nationality VARCHAR(3),
    verified_by VARCHAR(100) NOT NULL,
    attestation_payload JSONB DEFAULT '{}'::jsonb NOT NULL,
    verified_at TIMESTAMP WITH TIME ZONE NOT NULL,
    PRIMARY KEY (id),
    FOREIGN KEY(customer_id) REFERENCES crm.customer (id),
    UNIQUE (customer_id),
    CONSTRAINT uq_customer_identity_document UNIQUE (document_type, document_number_hash)
);

CREATE TABLE crm.interaction (
    id VARCHAR(16) NOT NULL,
    customer_id VARCHAR(16),
    channel VARCHAR(40) NOT NULL,
    direction VARCHAR(10) NOT NULL,
    reason VARCHAR(60) NOT NULL,
    summary VARCHAR(500) NOT NULL,
    body VARCHAR(4000) NOT NULL,
    actor VARCHAR(200) NOT NULL,
    agent_id VARCHAR(16),
    related_case_id VARCHAR(16),
    related_ticket_id VARCHAR(16),
    occurred_at TIMESTAMP WITH TIME ZONE NOT NULL,
    PRIMARY KEY (id),
    FOREIGN KEY(customer_id) REFERENCES crm.customer (id)
);

CREATE INDEX ix_interaction_customer ON crm.interaction (customer_id, occurred_at);

CREATE TABLE crm.support_case (
    id VARCHAR(16) NOT NULL,
    customer_id VARCHAR(16) NOT NULL,
    subject VARCHAR(200) NOT NULL,
    description VARCHAR(4000) NOT NULL,
    state VARCHAR(20) NOT NULL,
    priority VARCHAR(20) NOT NULL,
    category VARCHAR(30) NOT NULL,
    resolution_code VARCHAR(50),
    opened_by VARCHAR(200) NOT NULL,
    opened_by_agent_id VARCHAR(16),
    opened_at TIMESTAMP WITH TIME ZONE NOT NULL,
    updated_at TIMESTAMP WITH TIME ZONE NOT NULL,
    resolved_at TIMESTAMP WITH TIME ZONE,
    closed_at TIMESTAMP WITH TIME ZONE,
    PRIMARY KEY (id),
    FOREIGN KEY(customer_id) REFERENCES crm.customer (id),
    FOREIGN KEY(opened_by_agent_id) REFERENCES crm.agent (id)
);

CREATE INDEX ix_crm_support_case_state ON crm.support_case (state);

CREATE INDEX ix_support_case_customer ON crm.support_case (customer_id, opened_at);

CREATE TABLE service_ordering.provisioning_task (
    id VARCHAR(20) NOT NULL,
    service_order_id VARCHAR(20) NOT NULL,
    service_id VARCHAR(20) NOT NULL,
    task_type VARCHAR(30) NOT NULL,
    state VARCHAR(20) NOT NULL,
    attempts INTEGER NOT NULL,
    last_error VARCHAR(2000),
    ticket_id VARCHAR(64),
    resolution_note VARCHAR(2000),
    created_at TIMESTAMP WITH TIME ZONE NOT NULL,
    started_at TIMESTAMP WITH TIME ZONE,
    completed_at TIMESTAMP WITH TIME ZONE,
    updated_at TIMESTAMP WITH TIME ZONE NOT NULL,
    PRIMARY KEY (id),
    FOREIGN KEY(service_id) REFERENCES service_ordering.service (id),
    FOREIGN KEY(service_order_id) REFERENCES service_ordering.service_order (id),
    UNIQUE (service_order_id, task_type)
);

CREATE INDEX ix_provisioning_task_state ON service_ordering.provisioning_task (state);

CREATE TABLE service_ordering.service_state_history (
    id BIGSERIAL NOT NULL,
    service_id VARCHAR(20) NOT NULL,
    from_state VARCHAR(20),
    to_state VARCHAR(20) NOT NULL,
    at TIMESTAMP WITH TIME ZONE NOT NULL,
    reason VARCHAR(1000),
    PRIMARY KEY (id),
    FOREIGN KEY(service_id) REFERENCES service_ordering.service (id)
);

CREATE INDEX ix_service_state_history_service ON service_ordering.service_state_history (service_id, id);

CREATE TABLE usage.balance_fraction (
    balance_id BIGINT NOT NULL,
    period_start TIMESTAMP WITH TIME ZONE NOT NULL,
    fine BIGINT NOT NULL,
    PRIMARY KEY (balance_id),
    FOREIGN KEY(balance_id) REFERENCES subscription.bundle_balance (id) ON DELETE CASCADE
);

CREATE TABLE crm.case_note (
    id SERIAL NOT NULL,
    case_id VARCHAR(16) NOT NULL,
    author VARCHAR(200) NOT NULL,
    body VARCHAR(4000) NOT NULL,
    created_at TIMESTAMP WITH TIME ZONE NOT NULL,
    PRIMARY KEY (id),
    FOREIGN KEY(case_id) REFERENCES crm.support_case (id)
);

CREATE INDEX ix_crm_case_note_case_id ON crm.case_note (case_id);

CREATE TABLE crm.ticket (
    id VARCHAR(16) NOT NULL,
    customer_id VARCHAR(16),
    case_id VARCHAR(16),
    ticket_type VARCHAR(40) NOT NULL,
    subject VARCHAR(200) NOT NULL,
    description VARCHAR(4000) NOT NULL,
    state VARCHAR(20) NOT NULL,
    priority VARCHAR(20) NOT NULL,
    assigned_to_agent_id VARCHAR(16),
    related_order_id VARCHAR(32),
    related_service_id VARCHAR(32),
    waiting_workflow_id VARCHAR(200),
    waiting_topic VARCHAR(40),
    sla_due_at TIMESTAMP WITH TIME ZONE,
    sla_timer_started_at TIMESTAMP WITH TIME ZONE,
    escalations INTEGER NOT NULL,
    opened_by VARCHAR(200) NOT NULL,
    opened_at TIMESTAMP WITH TIME ZONE NOT NULL,
    updated_at TIMESTAMP WITH TIME ZONE,
    resolved_at TIMESTAMP WITH TIME ZONE,
    closed_at TIMESTAMP WITH TIME ZONE,
    resolution_notes VARCHAR(4000),
    PRIMARY KEY (id),
    FOREIGN KEY(assigned_to_agent_id) REFERENCES crm.agent (id),
    FOREIGN KEY(case_id) REFERENCES crm.support_case (id),
    FOREIGN KEY(customer_id) REFERENCES crm.customer (id)
);

CREATE INDEX ix_crm_ticket_case_id ON crm.ticket (case_id);

CREATE INDEX ix_crm_ticket_customer_id ON crm.ticket (customer_id);

CREATE INDEX ix_ticket_related_order ON crm.ticket (related_order_id);

CREATE INDEX ix_ticket_state ON crm.ticket (state, opened_at);

CREATE TABLE crm.ticket_note (
    id SERIAL NOT NULL,
    ticket_id VARCHAR(16) NOT NULL,
    author VARCHAR(200) NOT NULL,
    body VARCHAR(4000) NOT NULL,
    created_at TIMESTAMP WITH TIME ZONE NOT NULL,
    PRIMARY KEY (id),
    FOREIGN KEY(ticket_id) REFERENCES crm.ticket (id)
);

CREATE INDEX ix_crm_ticket_note_ticket_id ON crm.ticket_note (ticket_id);

CREATE TABLE crm.ticket_state_history (
    id SERIAL NOT NULL,
    ticket_id VARCHAR(16) NOT NULL,
    trigger VARCHAR(20) NOT NULL,
    from_state VARCHAR(20),
    to_state VARCHAR(20) NOT NULL,
    reason VARCHAR(500),
    actor VARCHAR(200) NOT NULL,
    changed_at TIMESTAMP WITH TIME ZONE NOT NULL,
    PRIMARY KEY (id),
    FOREIGN KEY(ticket_id) REFERENCES crm.ticket (id)
);

CREATE INDEX ix_crm_ticket_state_history_ticket_id ON crm.ticket_state_history (ticket_id);

UPDATE public.alembic_version SET version_num='0001' WHERE public.alembic_version.version_num = '0000';

-- Destinations a peer's answer disabled (Slack's channel_not_found, a webhook's HTTP 410): no
-- delivery is attempted to them until an admin enables them again (`invoiceflow destinations
-- enable NAME`). Shared by every node.
CREATE TABLE disabled_destinations (
    name        TEXT   PRIMARY KEY,
    reason      TEXT   NOT NULL,
    disabled_at BIGINT NOT NULL                -- microseconds
);

-- One change-data-capture sweep in flight per company across nodes: the node sweeping it, until
-- sweep_until (a node that died mid-sweep lets another take it over after that).
ALTER TABLE quickbooks_connections ADD COLUMN sweep_owner TEXT;
ALTER TABLE quickbooks_connections ADD COLUMN sweep_until BIGINT;

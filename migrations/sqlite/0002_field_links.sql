-- A record's own deal_id/contact_id/company_id fields become columns of `records`, indexed, instead
-- of rows of `links`: an import then writes one narrow index entry per link, not a row and two
-- index entries. `links` gives way to `manual_links`, which holds only what was done by hand.
ALTER TABLE records ADD COLUMN deal_id TEXT;
ALTER TABLE records ADD COLUMN contact_id TEXT;
ALTER TABLE records ADD COLUMN company_id TEXT;
UPDATE records SET deal_id = body->'holders'->>'deal', contact_id = body->'holders'->>'contact',
    company_id = body->'holders'->>'company'
WHERE kind = 'invoice';
CREATE INDEX records_by_deal ON records (deal_id) WHERE deal_id IS NOT NULL;
CREATE INDEX records_by_contact ON records (contact_id) WHERE contact_id IS NOT NULL;
CREATE INDEX records_by_company ON records (company_id) WHERE company_id IS NOT NULL;

CREATE TABLE manual_links (
    holder_kind TEXT NOT NULL,              -- deal | contact | company
    holder_id   TEXT NOT NULL,
    account     TEXT NOT NULL,
    invoice_id  TEXT NOT NULL,
    -- true: linked by hand; false: the invoice's own field links it, and that link was removed by
    -- hand (until the field changes)
    linked      BOOLEAN NOT NULL,
    PRIMARY KEY (holder_kind, holder_id, account, invoice_id)
) WITHOUT ROWID;
CREATE INDEX manual_links_by_invoice ON manual_links (account, invoice_id);

INSERT INTO manual_links (holder_kind, holder_id, account, invoice_id, linked)
SELECT holder_kind, holder_id, account, invoice_id, true FROM links WHERE origin = 'manual';
INSERT INTO manual_links (holder_kind, holder_id, account, invoice_id, linked)
SELECT 'deal', r.deal_id, r.account, r.id, false FROM records r
WHERE r.deal_id IS NOT NULL AND NOT EXISTS (SELECT 1 FROM links l WHERE l.holder_kind = 'deal'
    AND l.holder_id = r.deal_id AND l.account = r.account AND l.invoice_id = r.id)
ON CONFLICT DO NOTHING;
INSERT INTO manual_links (holder_kind, holder_id, account, invoice_id, linked)
SELECT 'contact', r.contact_id, r.account, r.id, false FROM records r
WHERE r.contact_id IS NOT NULL AND NOT EXISTS (SELECT 1 FROM links l WHERE l.holder_kind = 'contact'
    AND l.holder_id = r.contact_id AND l.account = r.account AND l.invoice_id = r.id)
ON CONFLICT DO NOTHING;
INSERT INTO manual_links (holder_kind, holder_id, account, invoice_id, linked)
SELECT 'company', r.company_id, r.account, r.id, false FROM records r
WHERE r.company_id IS NOT NULL AND NOT EXISTS (SELECT 1 FROM links l WHERE l.holder_kind = 'company'
    AND l.holder_id = r.company_id AND l.account = r.account AND l.invoice_id = r.id)
ON CONFLICT DO NOTHING;
DROP TABLE links;

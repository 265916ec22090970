-- Receipts: when each member's read watermark last moved; NULL until it first does.

ALTER TABLE memberships ADD COLUMN read_at timestamptz;

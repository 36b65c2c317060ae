-- The 2025 rules (issue 19): when cover starts for the paid payable (待遇享受时间) and why, as the
-- rules answered when the channel reported the payment; printed on the receipt and posted to the
-- agency. Null on receipts from before, and on payments yibao did not decide it for (bank debit
-- runs, statement bookings).
ALTER TABLE receipts ADD COLUMN cover_starts_on DATE;
ALTER TABLE receipts ADD COLUMN cover_code TEXT
    CONSTRAINT receipts_cover_code_size CHECK (cover_code IS NULL OR length(cover_code) BETWEEN 1 AND 32);

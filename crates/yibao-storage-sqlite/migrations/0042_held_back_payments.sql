-- A back-payment (补缴修复) held by an order is cancelled too when its year's contribution is paid
-- (issue 19): the order's later report is then owed back instead of recording a year bought back
-- that shortens nothing. The index of open back-payments follows the statement that cancels them
-- (status unpaid or locked; a back-payment is never exempt: one costing nothing is refused).
DROP INDEX payables_open_back_payments;
CREATE INDEX payables_open_back_payments ON payables (region_code, id_number)
    WHERE buys_back_year IS NOT NULL AND status IN ('unpaid', 'locked');

-- An agreement's number is the bank's, unique within its region only (key region and number
-- since 0012). Staff may name one by its number alone (to cancel it): the regions holding it are
-- found through this index, not by reading every agreement (on Citus, each shard's).
CREATE INDEX debit_agreements_by_number ON debit_agreements (agreement_no);

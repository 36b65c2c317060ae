-- The foreign keys of the bulk and payment paths checked once per statement instead of once per
-- row (issue 14).
--
-- PostgreSQL checks a declared foreign key with a query of its own for every row written, and
-- locks the row it finds (FOR KEY SHARE, a write to the referenced row). A roster import writes
-- four such rows per person (persons, person_directory and enrolment_claims name their region;
-- enrolments name their person), an assessment one per payable (its enrolment), and a payment
-- report six (its channel; the application's and the receipt's payable and payment; the
-- receipt's counter). Measured on 200 000 rows written 1000 a statement: a foreign key to one
-- region added 0.8 s (4 µs a row), one to a person 1.15 s; a check of the statement's rows as a
-- set, 0.0 s and 0.36 s.
--
-- So nine of those foreign keys become statement-level triggers that read the rows a statement
-- wrote (its transition table) and refuse the statement, with the foreign key's own error code
-- and name, when any names a row that does not exist. The lock the foreign key took kept the
-- referenced row from being deleted, or its key changed, before the writer committed; here the
-- referenced rows can never be deleted (nor truncated) nor their keys changed (regions, persons,
-- enrolments, payables, channels and receipt counters are records that nothing deletes), which
-- triggers refuse, so no lock is needed. A writer's own key columns cannot change either
-- (nothing changes them), but for a claim's region, which moves with its person, checked again.
-- The two that name a payment stay declared: a payment booked from a statement (长款) may be
-- deleted again by reconciliation, and its foreign keys keep that safe.
--
-- On a Citus cluster the declared foreign keys stay: triggers on distributed tables run on
-- each shard, where the rows they would read are not. SQLite keeps its foreign keys, which it
-- checks through the referenced table's key without a query per row.
DO $migration$
DECLARE
    changed TEXT;
BEGIN
    IF EXISTS (SELECT 1 FROM pg_extension WHERE extname = 'citus') THEN
        RETURN;
    END IF;

    -- The text columns of the tables whose columns the row-level checks below name in their WHEN
    -- clauses compare their bytes first, as every start makes every text column do
    -- (`compare_text_by_bytes`, one statement per table, as here): a column a trigger names can
    -- no longer change its collation. A database whose columns have done so already changes
    -- nothing here; on a new database the tables are empty. All or nothing, as at a start: where
    -- a view an operator made over a column keeps its table as it is, the declared foreign keys
    -- stay, and nothing here changes (a check comparing a "C" column with a table's index under
    -- the database's collation could not use the index).
    BEGIN
        FOR changed IN
            SELECT format('ALTER TABLE %I %s', c.relname,
                          string_agg(format('ALTER COLUMN %I TYPE text COLLATE "C"', a.attname), ', '
                                     ORDER BY a.attnum))
            FROM pg_attribute a JOIN pg_class c ON c.oid = a.attrelid
            WHERE c.relnamespace = current_schema()::regnamespace
              AND c.relname IN ('persons', 'person_directory', 'enrolment_claims', 'enrolments', 'payables',
                                'pooling_regions', 'payments', 'payment_applications', 'receipts', 'channels',
                                'receipt_counters')
              AND a.attnum > 0 AND NOT a.attisdropped
              AND a.atttypid = 'text'::regtype AND a.attcollation = 'default'::regcollation
            GROUP BY c.relname ORDER BY c.relname
        LOOP
            EXECUTE changed;
        END LOOP;
    EXCEPTION WHEN dependent_objects_still_exist OR feature_not_supported THEN
        RAISE NOTICE 'foreign keys kept as they are: a view keeps a column''s collation (%)', SQLERRM;
        RETURN;
    END;

    -- Each check reads the tables of the schema it was made in (`search_path FROM CURRENT`), as a
    -- foreign key names its table whatever the session's search path.
    -- A check of a table that grows (persons, enrolments, payables) probes its key once for each
    -- row added, as the foreign key did, whatever the statistics say: its plan is kept for the
    -- connection's life, and one made while the table was small (a hash of all its rows) would
    -- read the whole table for every statement once it had grown. The small tables (regions,
    -- channels, receipt counters) are left to the planner.

    -- Raises the foreign key violation named by the trigger's first argument.
    CREATE FUNCTION refuse_as_foreign_key() RETURNS trigger LANGUAGE plpgsql AS $fn$
    BEGIN
        RAISE EXCEPTION USING
            ERRCODE = 'foreign_key_violation',
            CONSTRAINT = TG_ARGV[0],
            MESSAGE = format('%s on table "%s" violates foreign key constraint "%s": %s',
                             lower(TG_OP), TG_TABLE_NAME, TG_ARGV[0], TG_ARGV[1]);
    END
    $fn$;

    -- The rows a statement added or changed (`added`) name known regions.
    CREATE FUNCTION check_added_rows_name_regions() RETURNS trigger LANGUAGE plpgsql
        SET search_path FROM CURRENT AS $fn$
    BEGIN
        IF EXISTS (SELECT 1 FROM added a WHERE NOT EXISTS
                   (SELECT 1 FROM pooling_regions r WHERE r.region_code = a.region_code)) THEN
            RAISE EXCEPTION USING
                ERRCODE = 'foreign_key_violation',
                CONSTRAINT = TG_ARGV[0],
                MESSAGE = format('%s on table "%s" violates foreign key constraint "%s": '
                                 'a row names a region that is not registered',
                                 lower(TG_OP), TG_TABLE_NAME, TG_ARGV[0]);
        END IF;
        RETURN NULL;
    END
    $fn$;

    -- The enrolments a statement added name persons on record.
    CREATE FUNCTION check_added_enrolments_name_persons() RETURNS trigger LANGUAGE plpgsql
        SET enable_seqscan = off SET enable_hashjoin = off SET enable_mergejoin = off SET search_path FROM CURRENT AS $fn$
    BEGIN
        IF EXISTS (SELECT 1 FROM added a WHERE NOT EXISTS
                   (SELECT 1 FROM persons p
                    WHERE p.region_code = a.region_code AND p.id_number = a.id_number)) THEN
            RAISE EXCEPTION USING
                ERRCODE = 'foreign_key_violation',
                CONSTRAINT = 'enrolments_region_code_id_number_fkey',
                MESSAGE = 'insert on table "enrolments" violates foreign key constraint '
                          '"enrolments_region_code_id_number_fkey": an enrolment names a person not on record';
        END IF;
        RETURN NULL;
    END
    $fn$;

    -- The payables a statement added name enrolments.
    CREATE FUNCTION check_added_payables_name_enrolments() RETURNS trigger LANGUAGE plpgsql
        SET enable_seqscan = off SET enable_hashjoin = off SET enable_mergejoin = off SET search_path FROM CURRENT AS $fn$
    BEGIN
        IF EXISTS (SELECT 1 FROM added a WHERE NOT EXISTS
                   (SELECT 1 FROM enrolments e
                    WHERE e.region_code = a.region_code AND e.fee_year = a.fee_year
                      AND e.id_number = a.id_number)) THEN
            RAISE EXCEPTION USING
                ERRCODE = 'foreign_key_violation',
                CONSTRAINT = 'payables_region_code_fee_year_id_number_fkey',
                MESSAGE = 'insert on table "payables" violates foreign key constraint '
                          '"payables_region_code_fee_year_id_number_fkey": a payable names no enrolment';
        END IF;
        RETURN NULL;
    END
    $fn$;

    -- The payments a statement added name channels.
    CREATE FUNCTION check_added_payments_name_channels() RETURNS trigger LANGUAGE plpgsql
        SET search_path FROM CURRENT AS $fn$
    BEGIN
        IF EXISTS (SELECT 1 FROM added a WHERE NOT EXISTS
                   (SELECT 1 FROM channels c WHERE c.channel_id = a.channel_id)) THEN
            RAISE EXCEPTION USING
                ERRCODE = 'foreign_key_violation',
                CONSTRAINT = 'payments_channel_id_fkey',
                MESSAGE = 'insert on table "payments" violates foreign key constraint '
                          '"payments_channel_id_fkey": a payment names no channel';
        END IF;
        RETURN NULL;
    END
    $fn$;

    -- The rows a statement added (applications, receipts) name payables.
    CREATE FUNCTION check_added_rows_name_payables() RETURNS trigger LANGUAGE plpgsql
        SET enable_seqscan = off SET enable_hashjoin = off SET enable_mergejoin = off SET search_path FROM CURRENT AS $fn$
    BEGIN
        IF EXISTS (SELECT 1 FROM added a WHERE NOT EXISTS
                   (SELECT 1 FROM payables y
                    WHERE y.region_code = a.region_code AND y.payable_id = a.payable_id)) THEN
            RAISE EXCEPTION USING
                ERRCODE = 'foreign_key_violation',
                CONSTRAINT = TG_ARGV[0],
                MESSAGE = format('insert on table "%s" violates foreign key constraint "%s": '
                                 'a row names no payable', TG_TABLE_NAME, TG_ARGV[0]);
        END IF;
        RETURN NULL;
    END
    $fn$;

    -- The receipts a statement added name their region's receipt counters.
    CREATE FUNCTION check_added_receipts_name_counters() RETURNS trigger LANGUAGE plpgsql
        SET search_path FROM CURRENT AS $fn$
    BEGIN
        IF EXISTS (SELECT 1 FROM added a WHERE NOT EXISTS
                   (SELECT 1 FROM receipt_counters k
                    WHERE k.region_code = a.region_code AND k.receipt_code = a.receipt_code)) THEN
            RAISE EXCEPTION USING
                ERRCODE = 'foreign_key_violation',
                CONSTRAINT = 'receipts_receipt_code_fkey',
                MESSAGE = 'insert on table "receipts" violates foreign key constraint '
                          '"receipts_receipt_code_fkey": a receipt names no receipt counter';
        END IF;
        RETURN NULL;
    END
    $fn$;

    ALTER TABLE persons DROP CONSTRAINT persons_region_code_fkey;
    CREATE TRIGGER persons_region_code_fkey AFTER INSERT ON persons
        REFERENCING NEW TABLE AS added FOR EACH STATEMENT
        EXECUTE FUNCTION check_added_rows_name_regions('persons_region_code_fkey');
    ALTER TABLE person_directory DROP CONSTRAINT person_directory_region_code_fkey;
    CREATE TRIGGER person_directory_region_code_fkey AFTER INSERT ON person_directory
        REFERENCING NEW TABLE AS added FOR EACH STATEMENT
        EXECUTE FUNCTION check_added_rows_name_regions('person_directory_region_code_fkey');
    ALTER TABLE enrolment_claims DROP CONSTRAINT enrolment_claims_region_code_fkey;
    CREATE TRIGGER enrolment_claims_region_code_fkey AFTER INSERT ON enrolment_claims
        REFERENCING NEW TABLE AS added FOR EACH STATEMENT
        EXECUTE FUNCTION check_added_rows_name_regions('enrolment_claims_region_code_fkey');
    ALTER TABLE enrolments DROP CONSTRAINT enrolments_region_code_id_number_fkey;
    CREATE TRIGGER enrolments_region_code_id_number_fkey AFTER INSERT ON enrolments
        REFERENCING NEW TABLE AS added FOR EACH STATEMENT
        EXECUTE FUNCTION check_added_enrolments_name_persons();
    ALTER TABLE payables DROP CONSTRAINT payables_region_code_fee_year_id_number_fkey;
    CREATE TRIGGER payables_region_code_fee_year_id_number_fkey AFTER INSERT ON payables
        REFERENCING NEW TABLE AS added FOR EACH STATEMENT
        EXECUTE FUNCTION check_added_payables_name_enrolments();

    ALTER TABLE payments DROP CONSTRAINT payments_channel_id_fkey;
    CREATE TRIGGER payments_channel_id_fkey AFTER INSERT ON payments
        REFERENCING NEW TABLE AS added FOR EACH STATEMENT
        EXECUTE FUNCTION check_added_payments_name_channels();
    ALTER TABLE payment_applications DROP CONSTRAINT payment_applications_payable_id_fkey;
    CREATE TRIGGER payment_applications_payable_id_fkey AFTER INSERT ON payment_applications
        REFERENCING NEW TABLE AS added FOR EACH STATEMENT
        EXECUTE FUNCTION check_added_rows_name_payables('payment_applications_payable_id_fkey');
    ALTER TABLE receipts DROP CONSTRAINT receipts_payable_id_fkey;
    CREATE TRIGGER receipts_payable_id_fkey AFTER INSERT ON receipts
        REFERENCING NEW TABLE AS added FOR EACH STATEMENT
        EXECUTE FUNCTION check_added_rows_name_payables('receipts_payable_id_fkey');
    ALTER TABLE receipts DROP CONSTRAINT receipts_receipt_code_fkey;
    CREATE TRIGGER receipts_receipt_code_fkey AFTER INSERT ON receipts
        REFERENCING NEW TABLE AS added FOR EACH STATEMENT
        EXECUTE FUNCTION check_added_receipts_name_counters();

    -- The writers' keys never change (a row-level check only where they would).
    CREATE TRIGGER persons_region_kept BEFORE UPDATE ON persons FOR EACH ROW
        WHEN (OLD.region_code IS DISTINCT FROM NEW.region_code OR OLD.id_number IS DISTINCT FROM NEW.id_number)
        EXECUTE FUNCTION refuse_as_foreign_key('persons_region_code_fkey', 'a person keeps its region and ID number');
    CREATE TRIGGER person_directory_region_kept BEFORE UPDATE ON person_directory FOR EACH ROW
        WHEN (OLD.region_code IS DISTINCT FROM NEW.region_code OR OLD.id_number IS DISTINCT FROM NEW.id_number)
        EXECUTE FUNCTION refuse_as_foreign_key('person_directory_region_code_fkey', 'a directory row keeps its region');
    -- A claim moves with its person to another region (`move_person`): checked as when added.
    CREATE TRIGGER enrolment_claims_region_code_fkey_moved AFTER UPDATE ON enrolment_claims
        REFERENCING NEW TABLE AS added FOR EACH STATEMENT
        EXECUTE FUNCTION check_added_rows_name_regions('enrolment_claims_region_code_fkey');
    CREATE TRIGGER enrolments_key_kept BEFORE UPDATE ON enrolments FOR EACH ROW
        WHEN (OLD.region_code IS DISTINCT FROM NEW.region_code OR OLD.fee_year IS DISTINCT FROM NEW.fee_year
              OR OLD.id_number IS DISTINCT FROM NEW.id_number)
        EXECUTE FUNCTION refuse_as_foreign_key('enrolments_region_code_id_number_fkey', 'an enrolment keeps its region, fee year and person');
    CREATE TRIGGER payables_enrolment_kept BEFORE UPDATE ON payables FOR EACH ROW
        WHEN (OLD.region_code IS DISTINCT FROM NEW.region_code OR OLD.fee_year IS DISTINCT FROM NEW.fee_year
              OR OLD.id_number IS DISTINCT FROM NEW.id_number)
        EXECUTE FUNCTION refuse_as_foreign_key('payables_region_code_fee_year_id_number_fkey', 'a payable keeps its enrolment');

    CREATE TRIGGER payments_channel_kept BEFORE UPDATE ON payments FOR EACH ROW
        WHEN (OLD.channel_id IS DISTINCT FROM NEW.channel_id)
        EXECUTE FUNCTION refuse_as_foreign_key('payments_channel_id_fkey', 'a payment keeps its channel');
    CREATE TRIGGER payment_applications_payable_kept BEFORE UPDATE ON payment_applications FOR EACH ROW
        WHEN (OLD.region_code IS DISTINCT FROM NEW.region_code OR OLD.payable_id IS DISTINCT FROM NEW.payable_id)
        EXECUTE FUNCTION refuse_as_foreign_key('payment_applications_payable_id_fkey', 'an application keeps its payable');
    CREATE TRIGGER receipts_payable_kept BEFORE UPDATE ON receipts FOR EACH ROW
        WHEN (OLD.region_code IS DISTINCT FROM NEW.region_code OR OLD.payable_id IS DISTINCT FROM NEW.payable_id
              OR OLD.receipt_code IS DISTINCT FROM NEW.receipt_code)
        EXECUTE FUNCTION refuse_as_foreign_key('receipts_payable_id_fkey', 'a receipt keeps its payable and code');

    -- The rows they name are never deleted, nor their keys changed.
    CREATE TRIGGER pooling_regions_kept BEFORE DELETE ON pooling_regions FOR EACH ROW
        EXECUTE FUNCTION refuse_as_foreign_key('persons_region_code_fkey', 'a registered region is never deleted');
    CREATE TRIGGER pooling_regions_key_kept BEFORE UPDATE ON pooling_regions FOR EACH ROW
        WHEN (OLD.region_code IS DISTINCT FROM NEW.region_code)
        EXECUTE FUNCTION refuse_as_foreign_key('persons_region_code_fkey', 'a region keeps its code');
    CREATE TRIGGER persons_kept BEFORE DELETE ON persons FOR EACH ROW
        EXECUTE FUNCTION refuse_as_foreign_key('enrolments_region_code_id_number_fkey', 'a person on record is never deleted');
    CREATE TRIGGER enrolments_kept BEFORE DELETE ON enrolments FOR EACH ROW
        EXECUTE FUNCTION refuse_as_foreign_key('payables_region_code_fee_year_id_number_fkey', 'an enrolment is never deleted');
    CREATE TRIGGER payables_kept BEFORE DELETE ON payables FOR EACH ROW
        EXECUTE FUNCTION refuse_as_foreign_key('payment_applications_payable_id_fkey', 'a payable is never deleted');
    CREATE TRIGGER payables_key_kept BEFORE UPDATE ON payables FOR EACH ROW
        WHEN (OLD.payable_id IS DISTINCT FROM NEW.payable_id)
        EXECUTE FUNCTION refuse_as_foreign_key('payment_applications_payable_id_fkey', 'a payable keeps its ID');
    CREATE TRIGGER channels_kept BEFORE DELETE ON channels FOR EACH ROW
        EXECUTE FUNCTION refuse_as_foreign_key('payments_channel_id_fkey', 'a channel is never deleted');
    CREATE TRIGGER channels_key_kept BEFORE UPDATE ON channels FOR EACH ROW
        WHEN (OLD.channel_id IS DISTINCT FROM NEW.channel_id)
        EXECUTE FUNCTION refuse_as_foreign_key('payments_channel_id_fkey', 'a channel keeps its ID');
    CREATE TRIGGER receipt_counters_kept BEFORE DELETE ON receipt_counters FOR EACH ROW
        EXECUTE FUNCTION refuse_as_foreign_key('receipts_receipt_code_fkey', 'a receipt counter is never deleted');
    CREATE TRIGGER receipt_counters_key_kept BEFORE UPDATE ON receipt_counters FOR EACH ROW
        WHEN (OLD.region_code IS DISTINCT FROM NEW.region_code OR OLD.receipt_code IS DISTINCT FROM NEW.receipt_code)
        EXECUTE FUNCTION refuse_as_foreign_key('receipts_receipt_code_fkey', 'a receipt counter keeps its code');
    CREATE TRIGGER payables_not_truncated BEFORE TRUNCATE ON payables FOR EACH STATEMENT
        EXECUTE FUNCTION refuse_as_foreign_key('payment_applications_payable_id_fkey', 'a payable is never deleted');
    CREATE TRIGGER channels_not_truncated BEFORE TRUNCATE ON channels FOR EACH STATEMENT
        EXECUTE FUNCTION refuse_as_foreign_key('payments_channel_id_fkey', 'a channel is never deleted');
    CREATE TRIGGER receipt_counters_not_truncated BEFORE TRUNCATE ON receipt_counters FOR EACH STATEMENT
        EXECUTE FUNCTION refuse_as_foreign_key('receipts_receipt_code_fkey', 'a receipt counter is never deleted');
    CREATE TRIGGER pooling_regions_not_truncated BEFORE TRUNCATE ON pooling_regions FOR EACH STATEMENT
        EXECUTE FUNCTION refuse_as_foreign_key('persons_region_code_fkey', 'a registered region is never deleted');
    CREATE TRIGGER persons_not_truncated BEFORE TRUNCATE ON persons FOR EACH STATEMENT
        EXECUTE FUNCTION refuse_as_foreign_key('enrolments_region_code_id_number_fkey', 'a person on record is never deleted');
    CREATE TRIGGER enrolments_not_truncated BEFORE TRUNCATE ON enrolments FOR EACH STATEMENT
        EXECUTE FUNCTION refuse_as_foreign_key('payables_region_code_fee_year_id_number_fkey', 'an enrolment is never deleted');
END
$migration$;

-- Roster imports write a history row and an enrolment row per person; PostgreSQL checks each
-- foreign key with a trigger per row. Two of them guard little: history rows are only ever
-- written with their person in the same transaction, and an enrolment's fee policy is looked up
-- before it is written (and policies are never deleted). The person, region and enrolment keys stay.
ALTER TABLE person_history DROP CONSTRAINT IF EXISTS person_history_region_code_id_number_fkey;
ALTER TABLE enrolments DROP CONSTRAINT IF EXISTS enrolments_region_code_fee_year_fkey;

-- Persons are found by their ID number alone (a roster import's batch: every region's record of
-- each person) through the person directory, whose key starts with the ID number, then by their
-- own key: their index on the ID number alone (migration 0003) is read by nothing else, and every
-- person imported paid an entry in it (1 000 000 persons copied into a table with its indexes:
-- about 1.1 s of 13.5 s). On a Citus cluster the directory is distributed by the ID number and
-- the persons by region, on other nodes, so there every shard is still asked by its own index:
-- it stays (and `PostgresStorage::migrate` makes it again on a database that became a cluster).
DO $migration$
BEGIN
    IF NOT EXISTS (SELECT 1 FROM pg_extension WHERE extname = 'citus') THEN
        DROP INDEX persons_by_id_number;
    END IF;
END
$migration$;

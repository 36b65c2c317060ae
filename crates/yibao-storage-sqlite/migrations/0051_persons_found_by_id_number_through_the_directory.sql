-- Persons are found by their ID number alone (a roster import's batch: every region's record of
-- each person) through the person directory, whose key starts with the ID number, then by their
-- own key: their index on the ID number alone (migration 0003) is read by nothing else, and every
-- person imported paid an entry in it.
DROP INDEX persons_by_id_number;

-- Look-ups by ID number alone (channels search by it; imports check a batch of people across
-- regions). The primary keys lead with the region, so they cannot serve these.
CREATE INDEX persons_by_id_number ON persons (id_number);
CREATE INDEX enrolments_by_id_number ON enrolments (id_number);

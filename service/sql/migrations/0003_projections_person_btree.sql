-- A person's rows are few (one per role segment or name version, ever), so a btree on
-- person_id finds them all at once and `positions @>` filters the handful it returns.
-- GiST indexes were the costliest part of every append's writes: keep GiST where a
-- lookup must be one probe whatever the history's length (rosters by org, the tree by
-- parent), not here.
DROP INDEX membership_rows_person;
CREATE INDEX membership_rows_person ON membership_rows (person_id);
DROP INDEX person_rows_person;
CREATE INDEX person_rows_person ON person_rows (person_id);

-- `hiring-news rebuild` (service/rebuild.py): the projection made again in a shadow
-- schema, then swapped in.

-- gist_indexes --
-- The GiST indexes of a schema's projection tables, as statements that make them again:
-- rebuild drops them while it loads the shadow tables and runs these afterwards.
SELECT indexdef FROM pg_indexes
WHERE schemaname = $1 AND tablename = ANY($2::text[]) AND indexdef LIKE '% USING gist %'
ORDER BY indexname

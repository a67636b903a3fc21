--# differential.sql - the script test_differential.c runs once straight against the
--# primary and once through pgsluice; the client must receive the same messages.
--#
--# Format. Steps are separated by blank lines; a step is one simple Query (a
--# multi-statement string stays one Query) unless its first line is
--# "--@ pipeline". Lines starting with "--#" are comments of this file and are
--# not sent; other comments are part of the query text. Directives:
--#   --@ empty            send an empty Query string
--#   --@ copydata TEXT    when the server asks for COPY data, send TEXT + newline
--#                        as one CopyData message (in order), then CopyDone
--#   --@ copyfail MSG     end the COPY with CopyFail(MSG) instead of CopyDone
--#   --@ pipeline         every following line is one extended-protocol message,
--#                        all written in one go:
--#     parse NAME SQL               Parse (no parameter types; cast in the SQL)
--#     bind PORTAL STMT t|b P1|P2   Bind; t/b = result format; \N = NULL
--#     describe S|P NAME            Describe statement or portal
--#     execute PORTAL MAXROWS       Execute (0 = all rows)
--#     close S|P NAME               Close statement or portal
--#     flush / sync                 Flush / Sync
--#   NAME "-" is the unnamed statement or portal.
--# @S@ is replaced with a schema name that is the same in both runs.
--#
--# Rules. Nothing may depend on the backend or the clock (pg_backend_pid(), now(),
--# random(), inet_server_port(), catalog scan order). Transaction pooling keeps
--# only reported GUCs across transactions, so other settings change only through
--# SET LOCAL; prepared statements live within one Sync or transaction; objects
--# are dropped one by one at the end because a cascading drop lists them in
--# catalog order. Always ORDER BY.

--# ---- setup and defaults

CREATE SCHEMA @S@

SET TimeZone = 'UTC'

SHOW TimeZone

SHOW DateStyle

SHOW IntervalStyle

SELECT current_user, session_user, current_database(), current_schema IS NOT NULL AS has_schema

CREATE TABLE @S@.items (
    id serial PRIMARY KEY,
    name text NOT NULL UNIQUE,
    qty int4 CHECK (qty >= 0),
    price numeric(10,2),
    created timestamptz,
    tags text[],
    attrs jsonb
)

CREATE TABLE @S@.kv (k text PRIMARY KEY, v text)

CREATE TABLE @S@.orders (id int8 GENERATED ALWAYS AS IDENTITY PRIMARY KEY, item_id int4 NOT NULL REFERENCES @S@.items (id), amount int2 NOT NULL DEFAULT 1, note varchar(20))

CREATE TABLE IF NOT EXISTS @S@.kv (k text PRIMARY KEY, v text)

CREATE TYPE @S@.mood AS ENUM ('sad', 'ok', 'happy')

CREATE DOMAIN @S@.posint AS int4 CHECK (VALUE > 0)

CREATE SEQUENCE @S@.seq START 100 INCREMENT 5

--# ---- scalar types

SELECT 1::int2 AS a, (-32768)::int2 AS b, 2147483647::int4 AS c, (-2147483648)::int4 AS d, 9223372036854775807::int8 AS e, 0::int8 AS f

SELECT 32768::int2

SELECT 2147483647::int4 + 1

SELECT 1.50::numeric(10,2), 123456789.123456789::numeric, 'NaN'::numeric, 0.1 + 0.2, 1 / 3::numeric, round(2.5), (-1.005)::numeric(6,2), 1e-20::numeric, 'Infinity'::numeric

SELECT 0.1::float4, 0.1::float8, 1e300::float8 * 10, '-Infinity'::float8, 'NaN'::float4, 3.14159265358979::float8, 1.0e-45::float4, 2.5::float8 / 3

BEGIN; SET LOCAL extra_float_digits = 0; SELECT 0.1::float4 AS f4, 1 / 3::float8 AS f8; SET LOCAL extra_float_digits = -10; SELECT pi(); SET LOCAL extra_float_digits = 3; SELECT 0.1::float4, 1e23::float8; COMMIT

SELECT 1e308::float8 * 10

SELECT 'plain' AS t1, 'it''s' AS t2, E'tab\there' AS t3, 'unicode: żółć ☃ 日本語 😀' AS t4, '' AS t5, NULL::text AS t6, 'back\slash' AS t7, 'double "quotes"' AS t8, E'line\nbreak' AS t9

SELECT length('日本語'), octet_length('日本語'), upper('abc'), lower('ÀB'), reverse('abc'), 'a' || NULL || 'b', concat('a', NULL, 'b'), format('%s=%L', 'k', 'v''s')

SELECT 'abc'::char(5) AS c5, 'abc'::varchar(2) AS v2, 'abcdef'::varchar(10) AS v10, 'x'::"char" AS ch, 'name'::name AS nm

SELECT '\xdeadbeef'::bytea, decode('68656c6c6f', 'hex'), ''::bytea, E'\\000\\001\\377'::bytea, set_byte('\x00'::bytea, 0, 255), md5('abc'::bytea)

SELECT true, false, NULL::bool, 't'::bool AND NULL, 'yes'::bool, NOT 'off'::bool, true OR NULL

SELECT 'maybe'::bool

SELECT '2024-02-29'::date, '2024-02-29'::date + 1, '23:59:59.999999'::time, '12:00+05:30'::timetz, '2024-01-01 12:34:56.789+02'::timestamptz, '2024-01-01 12:34:56'::timestamp, 'infinity'::timestamp, '-infinity'::date, '0044-03-15 BC'::date

SELECT '2024-03-10 02:30'::timestamp AT TIME ZONE 'America/New_York', '2024-06-01 12:00+00'::timestamptz AT TIME ZONE 'Asia/Kathmandu', date_trunc('month', '2024-05-17 10:11:12+00'::timestamptz), extract(epoch FROM '2024-01-01 00:00+00'::timestamptz), to_char('2024-07-04 15:16:17'::timestamp, 'YYYY-MM-DD HH24:MI:SS Day')

SELECT '2023-02-29'::date

SELECT '1 year 2 mons 3 days 04:05:06.789'::interval, interval '-1 day', '2024-03-01'::date - '2024-02-01'::date, age('2024-03-01'::timestamp, '2023-01-15'::timestamp), '90 minutes'::interval * 3, justify_hours('50 hours'::interval)

SELECT 'a0eebc99-9c0b-4ef8-bb6d-6bb9bd380a11'::uuid, md5('x')::uuid, '{A0EEBC99-9C0B-4EF8-BB6D-6BB9BD380A11}'::uuid = 'a0eebc99-9c0b-4ef8-bb6d-6bb9bd380a11'::uuid

SELECT 'not-a-uuid'::uuid

SELECT '{"b":1, "a":[1,2,{"c":null}]}'::json AS j, '{"b":1, "a":[1,2,{"c":null}]}'::jsonb AS jb, jsonb_pretty('{"k":"v","n":[1,2]}'), '{"a":1}'::jsonb -> 'a', '{"a":{"b":"x"}}'::jsonb #>> '{a,b}', jsonb_build_object('n', NULL, 'arr', ARRAY[1,2], 's', 'ü'), '[1,2,3]'::jsonb @> '[2]'

SELECT jsonb_path_query_array('{"xs":[1,5,10]}', '$.xs[*] ? (@ > 2)'), json_agg(g ORDER BY g) FROM generate_series(1, 4) g

SELECT '{bad json'::json

SELECT ARRAY[1,2,3] AS a, ARRAY[[1,2],[3,4]] AS b, '{}'::int[] AS c, ARRAY['a', NULL, 'with space', 'quo"te', 'back\slash', ''] AS d, ARRAY[1.5, NULL]::numeric[] AS e, '[0:2]={7,8,9}'::int[] AS f, (ARRAY[10,20,30])[2] AS g, array_length(ARRAY[1,2,3], 1) AS h

SELECT ARRAY['2024-01-01'::date, NULL], ARRAY[true, false], ARRAY['{"a":1}'::jsonb], ARRAY['\x01'::bytea], unnest(ARRAY['x', 'y']) AS u

SELECT '{1,2'::int[]

SELECT int4range(1, 10) AS r1, '[2024-01-01,2024-02-01)'::daterange AS r2, numrange(1.5, NULL) AS r3, 'empty'::int4range AS r4, int8range(5, 5, '[]') AS r5, tstzrange('2024-01-01 00:00+00', '2024-01-02 00:00+00') AS r6, int4range(1, 10) @> 5 AS r7, int4range(1, 5) * int4range(3, 8) AS r8, '{[1,3), [5,7)}'::int4multirange AS r9

SELECT int4range(5, 1)

SELECT NULL AS n1, NULL::int AS n2, NULL::text[] AS n3, NULL::jsonb AS n4, coalesce(NULL, 'fallback') AS n5, NULLIF(1, 1) AS n6, NULL = NULL AS n7, NULL IS NULL AS n8, ARRAY[NULL, NULL]::int[] AS n9, ROW(NULL, 1) AS n10

SELECT '192.168.0.1/24'::inet, '10.0.0.0/8'::cidr, '08:00:2b:01:02:03'::macaddr, B'1010'::bit(4), B'101'::varbit, '(1,2)'::point, '<(0,0),1>'::circle, 'a fat cat sat'::tsvector, to_tsquery('simple', 'cat & hat'), 42::oid, 'int4'::regtype, 'pg_class'::regclass, '1234.5'::money

SELECT 1 AS "Mixed Case", 2 AS "quoted""name", 3 AS "ünïcödé", 5 AS "5", 6 AS a, 7 AS a

SELECT

SELECT FROM generate_series(1, 3)

SELECT 'ok'::@S@.mood, 'happy'::@S@.mood > 'sad', enum_range(NULL::@S@.mood), ARRAY['sad', 'ok']::@S@.mood[]

SELECT 'meh'::@S@.mood

SELECT 5::@S@.posint

SELECT (-1)::@S@.posint

SELECT nextval('@S@.seq'), nextval('@S@.seq'), currval('@S@.seq')

SELECT setval('@S@.seq', 1, false), nextval('@S@.seq')

SELECT ROW(1, 'a', NULL), (1, 2) < (1, 3), ROW(ROW(1, 2), ARRAY[3])

VALUES (1, 'one'), (2, NULL), (NULL, 'three')

WITH RECURSIVE fib(n, a, b) AS (SELECT 1, 0::numeric, 1::numeric UNION ALL SELECT n + 1, b, a + b FROM fib WHERE n < 90) SELECT n, a FROM fib WHERE n % 15 = 0 ORDER BY n

SELECT g, sum(g) OVER (ORDER BY g), rank() OVER (PARTITION BY g % 2 ORDER BY g DESC), lag(g) OVER (ORDER BY g) FROM generate_series(1, 8) g ORDER BY g

SELECT g % 3 AS bucket, count(*), string_agg(g::text, ',' ORDER BY g), array_agg(g ORDER BY g DESC), avg(g), stddev_samp(g)::numeric(10,4) FROM generate_series(1, 20) g GROUP BY 1 ORDER BY 1

SELECT pg_sleep(0), pg_typeof(1.5), pg_typeof(NULL::text[]), pg_column_size('abc'::text), 7 / 2, 7 % 2, -7 / 2, 2 ^ 10, |/ 16.0, @ -5

EXPLAIN (COSTS OFF) SELECT g FROM generate_series(1, 3) g WHERE g > 1

--# ---- data and constraint errors

INSERT INTO @S@.items (name, qty, price, created, tags, attrs) VALUES ('apple', 3, 1.25, '2024-01-02 03:04:05+00', '{red,fruit}', '{"origin":"NZ"}')

INSERT INTO @S@.items (name, qty, price, created, tags, attrs) VALUES ('pear', 0, 2.5, '2024-01-03 00:00:00+00', '{}', NULL), ('plum', NULL, NULL, NULL, NULL, '{"a":[1,{"b":null}]}'), ('fig''s', 12, 1234.5, '1999-12-31 23:59:59.999999+00', ARRAY['x', NULL], '[]')

INSERT INTO @S@.items (name, qty, price) VALUES ('kiwi', 7, 0.99) RETURNING id, name, qty, price * 2 AS double_price

SELECT * FROM @S@.items ORDER BY id

SELECT i.name, i.tags[1], i.attrs -> 'origin' AS origin, i.price::text FROM @S@.items AS i WHERE i.qty IS NOT NULL ORDER BY i.name COLLATE "C"

UPDATE @S@.items SET qty = qty + 1 WHERE qty IS NOT NULL

UPDATE @S@.items SET price = price * 1.1 WHERE name = 'apple' RETURNING name, price

DELETE FROM @S@.items WHERE name = 'nothing'

INSERT INTO @S@.items (name) VALUES ('apple')

INSERT INTO @S@.items (name) VALUES (NULL)

UPDATE @S@.items SET qty = -1 WHERE name = 'pear'

INSERT INTO @S@.orders (item_id, amount, note) VALUES (1, 2, 'first'), (2, 1, NULL) RETURNING id, item_id, amount, note

INSERT INTO @S@.orders (item_id) VALUES (999)

INSERT INTO @S@.orders (item_id, amount) VALUES (1, 40000)

INSERT INTO @S@.orders (item_id, note) VALUES (1, 'this note is far too long for the column')

INSERT INTO @S@.orders (id, item_id) VALUES (5, 1)

DELETE FROM @S@.items WHERE name = 'apple'

SELECT o.id, i.name, o.amount FROM @S@.orders o JOIN @S@.items i ON i.id = o.item_id ORDER BY o.id

INSERT INTO @S@.kv VALUES ('a', '1') ON CONFLICT (k) DO NOTHING

INSERT INTO @S@.kv VALUES ('a', '2') ON CONFLICT (k) DO UPDATE SET v = excluded.v RETURNING k, v

INSERT INTO @S@.kv VALUES ('a', '3') ON CONFLICT (k) DO NOTHING

--# ---- query errors

SELECT * FROM @S@.missing

SELECT nmae FROM @S@.items

SELEC 1

SELECT 1 +

SELECT (1, 2

SELECT 1/0

SELECT 'abc'::int

SELECT undefined_function(1, 'a')

SELECT 1 FROM @S@.items WHERE name = 1

SELECT count(*) FROM @S@.items GROUP BY nosuchcol

SELECT 'a' || 1 + 2

--# ---- notices, warnings and raised errors

DO $$ BEGIN RAISE NOTICE 'note %', 1; RAISE WARNING 'warn with detail' USING DETAIL = 'd1', HINT = 'h1'; RAISE INFO 'info'; RAISE LOG 'log, not sent'; RAISE DEBUG 'debug, not sent'; END $$

DO $$ BEGIN RAISE EXCEPTION 'custom failure %', 7 USING HINT = 'try again', DETAIL = 'some detail', ERRCODE = 'P0001'; END $$

DO $$ BEGIN RAISE EXCEPTION USING MESSAGE = 'with every field', ERRCODE = 'check_violation', COLUMN = 'c', TABLE = 't', SCHEMA = 's', CONSTRAINT = 'k', DATATYPE = 'dt'; END $$

DO $$
DECLARE
    n int;
BEGIN
    SELECT count(*) INTO n FROM @S@.items;
    RAISE NOTICE 'items: %', n;
    PERFORM 1 / 0;
EXCEPTION WHEN division_by_zero THEN
    RAISE NOTICE 'caught %', SQLSTATE;
END
$$

DO $$ BEGIN PERFORM nosuch(); END $$

DROP TABLE IF EXISTS @S@.nothing_here

DROP TABLE @S@.nothing_here

BEGIN; SET LOCAL client_min_messages = warning; DO $$ BEGIN RAISE NOTICE 'hidden'; RAISE WARNING 'shown'; END $$; COMMIT

--# ---- empty queries and multi-statement strings

--@ empty

;

  -- only a comment

/* a block comment */ ;;

SELECT 1 AS one; SELECT 2 AS two, 'b' AS bee

SELECT 1; SELECT 1/0; SELECT 3

INSERT INTO @S@.kv VALUES ('m1', 'x'); SELECT 1/0; INSERT INTO @S@.kv VALUES ('m2', 'y')

SELECT count(*) AS should_be_zero FROM @S@.kv WHERE k LIKE 'm%'

BEGIN; INSERT INTO @S@.kv VALUES ('m3', 'z'); COMMIT; SELECT k, v FROM @S@.kv WHERE k LIKE 'm%' ORDER BY k

SELECT 1;; ; SELECT 2

BEGIN; SELECT 1; SELECT 1/0; SELECT 2; COMMIT

ROLLBACK

--# ---- transactions spanning several Query messages

BEGIN

INSERT INTO @S@.kv VALUES ('t1', 'kept')

SELECT k, v FROM @S@.kv WHERE k = 't1'

COMMIT

BEGIN

INSERT INTO @S@.kv VALUES ('t2', 'discarded')

ROLLBACK

SELECT count(*) FROM @S@.kv WHERE k = 't2'

BEGIN

INSERT INTO @S@.kv VALUES ('t3', 'lost')

SELECT 1/0

SELECT 1

INSERT INTO @S@.kv VALUES ('t4', 'lost too')

COMMIT

SELECT count(*) FROM @S@.kv WHERE k IN ('t3', 't4')

COMMIT

BEGIN; BEGIN

ROLLBACK

BEGIN

INSERT INTO @S@.kv VALUES ('s1', 'before savepoint')

SAVEPOINT sp1

INSERT INTO @S@.kv VALUES ('s2', 'rolled back to savepoint')

SELECT 1/0

ROLLBACK TO SAVEPOINT sp1

INSERT INTO @S@.kv VALUES ('s3', 'after savepoint')

SAVEPOINT sp2

RELEASE SAVEPOINT sp2

ROLLBACK TO SAVEPOINT nope

ROLLBACK

SELECT count(*) FROM @S@.kv WHERE k LIKE 's%'

BEGIN; INSERT INTO @S@.kv VALUES ('s1', 'a'); SAVEPOINT x; INSERT INTO @S@.kv VALUES ('s1', 'dup'); ROLLBACK TO x

ROLLBACK TO x

INSERT INTO @S@.kv VALUES ('s2', 'b'); COMMIT

SELECT k, v FROM @S@.kv WHERE k LIKE 's%' ORDER BY k

BEGIN ISOLATION LEVEL REPEATABLE READ READ WRITE

SHOW transaction_isolation

SELECT k FROM @S@.kv WHERE k = 'a' FOR UPDATE

COMMIT

START TRANSACTION READ ONLY

SELECT count(*) FROM @S@.items

INSERT INTO @S@.kv VALUES ('ro', 'fails')

ROLLBACK

BEGIN

DECLARE cur CURSOR FOR SELECT g, g * g AS sq FROM generate_series(1, 7) g ORDER BY g

FETCH 2 FROM cur

MOVE 1 IN cur

FETCH ALL FROM cur

FETCH 1 FROM cur

CLOSE cur

COMMIT

BEGIN; PREPARE q(int) AS SELECT $1 * 3 AS tripled; EXECUTE q(5); EXECUTE q(NULL); DEALLOCATE q; COMMIT

--# ---- COPY

COPY @S@.kv (k, v) FROM STDIN (FORMAT csv)
--@ copydata c1,one
--@ copydata c2,"two, with comma"
--@ copydata c3,
--@ copydata c4,""
--@ copydata c5,"multi
--@ copydata line"

COPY @S@.kv FROM STDIN (DELIMITER '|')
--@ copydata d1|\N
--@ copydata d2|back\\slash
--@ copydata d3|unicode ☃

SELECT k, v, v IS NULL AS is_null FROM @S@.kv WHERE k LIKE 'c%' OR k LIKE 'd%' ORDER BY k

COPY @S@.kv FROM STDIN (FORMAT csv)
--@ copydata e1,fine
--@ copydata c1,duplicate
--@ copydata e2,never

COPY @S@.kv FROM STDIN (FORMAT csv)
--@ copydata f1,too,many

COPY @S@.kv FROM STDIN
--@ copydata g1	never
--@ copyfail client gave up

SELECT count(*) AS none FROM @S@.kv WHERE k LIKE 'e%' OR k LIKE 'f%' OR k LIKE 'g%'

COPY @S@.kv FROM STDIN (FORMAT csv)

SELECT 'before' AS first; COPY @S@.kv FROM STDIN (FORMAT csv); SELECT count(*) AS after_copy FROM @S@.kv WHERE k LIKE 'q%'
--@ copydata q1,in a multi-statement query
--@ copydata q2,second row

BEGIN

COPY @S@.kv FROM STDIN (FORMAT csv)
--@ copydata h1,in transaction

SELECT k, v FROM @S@.kv WHERE k = 'h1'

ROLLBACK

COPY (SELECT k, v FROM @S@.kv ORDER BY k) TO STDOUT

COPY (SELECT id, name, tags, attrs FROM @S@.items ORDER BY id) TO STDOUT (FORMAT csv, HEADER, FORCE_QUOTE *)

COPY (SELECT g, 'x' || g FROM generate_series(1, 3) g) TO STDOUT (FORMAT binary)

COPY (SELECT g, g * 2 FROM generate_series(1, 5000) g) TO STDOUT

COPY @S@.missing TO STDOUT

COPY @S@.kv (nosuchcol) TO STDOUT

--# ---- large results

SELECT g, md5(g::text), repeat('x', g % 50), g::numeric / 7 FROM generate_series(1, 10000) g

SELECT repeat('abcdefghij', 100000) AS one_megabyte, length(repeat('abcdefghij', 100000))

SELECT count(*), sum(g), max(md5(g::text)) FROM generate_series(1, 100000) g

--# ---- reported settings (ParameterStatus) and SHOW. A value that changes and
--# changes back within one Query is not reported; across Queries it is.

SET application_name = 'diff-test'

SHOW application_name

SELECT current_setting('application_name')

BEGIN; SET application_name = 'rolled-back'; ROLLBACK

SHOW application_name

BEGIN; SET LOCAL application_name = 'local-only'; SHOW application_name; COMMIT

SELECT current_setting('application_name')

BEGIN

SET application_name = 'inside transaction'

ROLLBACK

SHOW application_name

BEGIN

SET LOCAL application_name = 'local, across queries'

COMMIT

SELECT set_config('application_name', 'via-function', false)

SHOW application_name

RESET application_name

SHOW application_name

SET DateStyle = 'SQL, DMY'

SELECT '2024-02-29'::date, '2024-02-29 13:14:15+00'::timestamptz, '2024-02-29 13:14:15'::timestamp

SET DateStyle = 'German'

SELECT '2024-02-29'::date, '2024-02-29 13:14:15+00'::timestamptz

SET DateStyle TO Postgres, MDY

SELECT '2024-02-29 13:14:15+00'::timestamptz, '03/04/2024'::date

RESET DateStyle

SET DateStyle = 'bogus'

SET IntervalStyle = 'iso_8601'

SELECT '1 year 2 days 3 hours 4.5 seconds'::interval

SET IntervalStyle = 'sql_standard'

SELECT '1 year 2 months'::interval, '-3 days 04:05:06'::interval

SET IntervalStyle = 'postgres_verbose'

SELECT '1 year 2 days ago'::interval

SET TimeZone = 'Asia/Kolkata'

SELECT '2024-01-01 00:00:00+00'::timestamptz, '2024-07-01 12:00'::timestamptz, current_setting('TimeZone')

SET TIME ZONE 'America/Los_Angeles'

SELECT '2024-03-10 10:00:00+00'::timestamptz, '2024-11-03 09:30:00+00'::timestamptz

SET TimeZone = 'Not/AZone'

SET TIME ZONE 'UTC'

SET standard_conforming_strings = off

SELECT 'a\\b', 'tab\tchar'

RESET standard_conforming_strings

SELECT 'a\\b'

BEGIN; SET LOCAL IntervalStyle = 'iso_8601'; SELECT '1 day'::interval; COMMIT

SELECT '1 day'::interval, current_setting('IntervalStyle')

SHOW server_version_num

SHOW integer_datetimes

SHOW nosuch_setting

--# ---- extended protocol

--@ pipeline
parse - SELECT $1::int + 1 AS next, $2::text AS label
bind - - t 41|answer
describe P -
execute - 0
sync

--@ pipeline
parse s1 SELECT id, name, price FROM @S@.items WHERE id > $1 ORDER BY id
describe S s1
bind - s1 t 0
execute - 2
execute - 0
close S s1
sync

--@ pipeline
parse - INSERT INTO @S@.kv VALUES ($1, $2)
bind - - t p1|first
execute - 0
parse - SELECT 1 / $1::int
bind - - t 0
execute - 0
parse - INSERT INTO @S@.kv VALUES ('p3', 'never')
bind - - t
execute - 0
sync

SELECT count(*) AS rolled_back FROM @S@.kv WHERE k LIKE 'p%'

--@ pipeline
parse - SELECT $1::int * 2 AS doubled
bind - - t 21
execute - 0
sync
parse - SELECT $1::int / 0
bind - - t 1
execute - 0
sync
parse - INSERT INTO @S@.kv VALUES ($1, $2) RETURNING k
bind - - t p4|after error
execute - 0
sync

--@ pipeline
parse - SELECT 1::int4, 2::int8, 1.5::float8, 'text'::text, true, '2024-01-01 00:00:00+00'::timestamptz, 12.34::numeric, NULL::int, '\x0102'::bytea, ARRAY[1,2]::int4[], 'a0eebc99-9c0b-4ef8-bb6d-6bb9bd380a11'::uuid, '{"a":1}'::jsonb
bind - - b
describe P -
execute - 0
sync

--@ pipeline
parse - SELEC 1
bind - - t
execute - 0
sync

--@ pipeline
parse - SELECT $1::int
bind - - t
execute - 0
sync

--@ pipeline
parse - SELECT $1::int + $2::int
bind - - t notanumber|1
execute - 0
sync

--@ pipeline
parse - SELECT $1::text IS NULL AS is_null, coalesce($1::text, 'was null') AS v, $2::int[] AS arr
bind - - t \N|{1,NULL,3}
execute - 0
sync

--@ pipeline
parse -
bind - - t
describe P -
execute - 0
sync

--@ pipeline
parse ins INSERT INTO @S@.kv VALUES ($1, $2)
describe S ins
bind - ins t x1|one
execute - 0
bind - ins t x2|\N
execute - 0
close S ins
sync

--@ pipeline
parse - INSERT INTO @S@.kv VALUES ($1, $2)
bind - - t x3|rolled back with the duplicate
execute - 0
bind - - t x1|duplicate
execute - 0
sync

SELECT k, v FROM @S@.kv WHERE k LIKE 'x%' ORDER BY k

--@ pipeline
parse - BEGIN
bind - - t
execute - 0
parse - INSERT INTO @S@.kv VALUES ($1, 'in explicit transaction')
bind - - t y1
execute - 0
parse - SELECT 1 / 0
bind - - t
execute - 0
bind - - t
execute - 0
sync

SELECT 1

ROLLBACK

--@ pipeline
parse s2 SELECT g FROM generate_series(1, $1::int) g ORDER BY g
flush
bind p1 s2 t 6
describe P p1
execute p1 2
execute p1 2
close P p1
bind p2 s2 b 3
execute p2 0
close S s2
sync

--@ pipeline
parse - CREATE TABLE @S@.ext (id int PRIMARY KEY, payload text)
bind - - t
execute - 0
parse - INSERT INTO @S@.ext SELECT g, 'row ' || g FROM generate_series(1, 5) g
bind - - t
execute - 0
parse - SELECT count(*), max(payload) FROM @S@.ext
bind - - t
execute - 0
sync

--@ pipeline
parse - DO $$ BEGIN RAISE NOTICE 'from extended'; END $$
bind - - t
execute - 0
parse - DROP TABLE IF EXISTS @S@.nothing_here
bind - - t
execute - 0
sync

--@ pipeline
parse - SET application_name = 'ext-app'
bind - - t
execute - 0
sync

SHOW application_name

--@ pipeline
parse - COPY (SELECT k, v FROM @S@.kv WHERE k LIKE 'x%' ORDER BY k) TO STDOUT
bind - - t
execute - 0
sync

--@ pipeline
parse - SELECT $1::numeric(10,2) AS price, $2::date + 1 AS next_day, $3::jsonb -> 'k' AS k
describe S -
bind - - t 12.345|2024-12-31|{"k":[true,null]}
execute - 0
sync

--@ pipeline
parse - SELECT * FROM @S@.missing
describe S -
sync
parse - SELECT 'after failed describe'
bind - - t
execute - 0
sync

--@ pipeline
bind - nosuchstatement t
execute - 0
sync

--@ pipeline
parse - SELECT name FROM @S@.items ORDER BY id
bind - - t
execute - 1
sync
parse - SELECT name FROM @S@.items ORDER BY id DESC
bind - - t
execute - 0
sync

--@ pipeline
parse - SELECT g, md5(g::text) FROM generate_series(1, 2000) g
bind - - t
execute - 0
sync

--# ---- teardown: dropping one by one keeps the messages deterministic

DROP TABLE @S@.ext

DROP TABLE @S@.orders

DROP TABLE @S@.items, @S@.kv

DROP SEQUENCE @S@.seq

DROP DOMAIN @S@.posint

DROP TYPE @S@.mood

DROP SCHEMA @S@

SELECT 'done' AS finished

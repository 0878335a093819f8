/* store_schema.h: the key store's schema steps, one text for both backends (internal to
 * src/store). Each backend instantiates STORE_MIGRATIONS() with its dialect's words:
 *   PRE       statements before step 1's tables (PostgreSQL: its version row)
 *   I64       a 64-bit integer column type
 *   KEYS_SEQ  extra keys column(s) after gen, with a leading comma ("" for none)
 *   NOROWID   table option for the allow and perms tables
 *   SERIAL_PK the audit table's increasing primary key
 * Entry i brings the schema from version i to i + 1. Never edit a shipped entry; append one. */
#ifndef IPLOCK_STORE_SCHEMA_H
#define IPLOCK_STORE_SCHEMA_H

#define STORE_MIGRATIONS(PRE, I64, KEYS_SEQ, NOROWID, SERIAL_PK) { \
	/* 0 -> 1 */ \
	PRE \
	"CREATE TABLE keys (" \
	"  id TEXT PRIMARY KEY," \
	"  hash TEXT NOT NULL UNIQUE," \
	"  masked TEXT NOT NULL," \
	"  type TEXT NOT NULL CHECK (type IN ('secret','restricted','publishable','org'))," \
	"  mode TEXT NOT NULL CHECK (mode IN ('live','test'))," \
	"  name TEXT NOT NULL DEFAULT ''," \
	"  created " I64 " NOT NULL," \
	"  expires_at " I64 "," \
	"  revoked_at " I64 "," \
	"  rotated_from TEXT," \
	"  gen " I64 " NOT NULL" KEYS_SEQ ");" \
	"CREATE INDEX keys_gen ON keys(gen);" \
	"CREATE TABLE allow (" \
	"  key_id TEXT NOT NULL REFERENCES keys(id)," \
	"  entry TEXT NOT NULL," \
	"  PRIMARY KEY (key_id, entry))" NOROWID ";" \
	"CREATE TABLE perms (" \
	"  key_id TEXT NOT NULL REFERENCES keys(id)," \
	"  resource TEXT NOT NULL," \
	"  level TEXT NOT NULL CHECK (level IN ('read','write'))," \
	"  PRIMARY KEY (key_id, resource))" NOROWID ";" \
	"CREATE TABLE audit (" \
	"  seq " SERIAL_PK "," \
	"  time " I64 " NOT NULL," \
	"  actor TEXT NOT NULL," \
	"  key_id TEXT," \
	"  action TEXT NOT NULL," \
	"  before TEXT," \
	"  after TEXT," \
	"  reason TEXT);", \
	/* 1 -> 2: key usage */ \
	"CREATE TABLE key_usage (" \
	"  key_id TEXT PRIMARY KEY," \
	"  last_used " I64 " NOT NULL," \
	"  last_client TEXT NOT NULL);" \
	"CREATE TABLE key_usage_hourly (" \
	"  key_id TEXT NOT NULL," \
	"  client TEXT NOT NULL," \
	"  hour " I64 " NOT NULL," \
	"  allowed " I64 " NOT NULL DEFAULT 0," \
	"  denied " I64 " NOT NULL DEFAULT 0," \
	"  PRIMARY KEY (key_id, client, hour));" \
	"CREATE INDEX key_usage_hourly_hour ON key_usage_hourly(hour);", \
	/* 2 -> 3: console (key note and report-only allowlists, console users and API tokens, \
	 * the key list's keyset index, audit by key and by actor) */ \
	"ALTER TABLE keys ADD COLUMN note TEXT;" \
	"ALTER TABLE keys ADD COLUMN allow_report INTEGER NOT NULL DEFAULT 0;" \
	"CREATE INDEX keys_list ON keys(created, id);" \
	"ALTER TABLE key_usage_hourly ADD COLUMN reported " I64 " NOT NULL DEFAULT 0;" \
	"CREATE TABLE console_users (" \
	"  name TEXT PRIMARY KEY," \
	"  hash TEXT NOT NULL," \
	"  role TEXT NOT NULL CHECK (role IN ('admin','viewer'))," \
	"  created " I64 " NOT NULL);" \
	"CREATE TABLE console_tokens (" \
	"  id TEXT PRIMARY KEY," \
	"  name TEXT NOT NULL UNIQUE," \
	"  hash TEXT NOT NULL UNIQUE," \
	"  masked TEXT NOT NULL," \
	"  scope TEXT NOT NULL CHECK (scope IN ('read','write'))," \
	"  created " I64 " NOT NULL," \
	"  created_by TEXT NOT NULL);" \
	"CREATE INDEX audit_key ON audit(key_id, seq);" \
	"CREATE INDEX audit_actor ON audit(actor, seq);", \
	/* 3 -> 4: proxy fleet (users, usage per user and egress address, nodes) */ \
	"CREATE TABLE proxy_users (" \
	"  name TEXT PRIMARY KEY," \
	"  hash TEXT NOT NULL," \
	"  old_hash TEXT," \
	"  old_expires " I64 " NOT NULL DEFAULT 0," \
	"  allow TEXT NOT NULL DEFAULT ''," \
	"  egress TEXT NOT NULL DEFAULT ''," \
	"  req_month " I64 " NOT NULL DEFAULT 0," \
	"  bytes_month " I64 " NOT NULL DEFAULT 0," \
	"  max_conns " I64 " NOT NULL DEFAULT 0," \
	"  created " I64 " NOT NULL," \
	"  removed_at " I64 " NOT NULL DEFAULT 0," \
	"  gen " I64 " NOT NULL);" \
	"CREATE INDEX proxy_users_gen ON proxy_users(gen);" \
	"CREATE TABLE proxy_usage (" \
	"  user_name TEXT NOT NULL," \
	"  egress TEXT NOT NULL," \
	"  hour " I64 " NOT NULL," \
	"  requests " I64 " NOT NULL DEFAULT 0," \
	"  bytes_up " I64 " NOT NULL DEFAULT 0," \
	"  bytes_down " I64 " NOT NULL DEFAULT 0," \
	"  PRIMARY KEY (user_name, egress, hour));" \
	"CREATE INDEX proxy_usage_hour ON proxy_usage(hour);" \
	"CREATE TABLE proxy_nodes (" \
	"  name TEXT PRIMARY KEY," \
	"  started " I64 " NOT NULL," \
	"  heartbeat " I64 " NOT NULL);" \
	"CREATE TABLE proxy_node_egress (" \
	"  node TEXT NOT NULL," \
	"  addr TEXT NOT NULL," \
	"  healthy INTEGER NOT NULL," \
	"  verdict TEXT NOT NULL," \
	"  checked " I64 " NOT NULL," \
	"  PRIMARY KEY (node, addr));", \
}

#define STORE_MIGRATIONS_SQLITE \
	STORE_MIGRATIONS("", "INTEGER", "", " WITHOUT ROWID", "INTEGER PRIMARY KEY AUTOINCREMENT")

#define STORE_MIGRATIONS_PG \
	STORE_MIGRATIONS("CREATE TABLE iplock_version (" \
			 "  id INTEGER PRIMARY KEY CHECK (id = 1)," \
			 "  v BIGINT NOT NULL);" \
			 "INSERT INTO iplock_version (id, v) VALUES (1, 0);", \
			 "BIGINT", ",  seq BIGSERIAL NOT NULL", "", "BIGSERIAL PRIMARY KEY")

#endif

/* store_fixture.h: the store tests' shared fixture (test_store.c, test_store_users.c). Each
 * test gets a fresh store: a SQLite file in a new temporary directory, or, when IPLOCK_TEST_PG
 * (or argv[1]) holds a libpq key=value connection string, a fresh PostgreSQL database on that
 * cluster (`make unit` starts a throwaway one with tools/with-pg.sh). Include after cmocka.h;
 * define STORE_FIXTURE_NAME (a short lower-case word naming the test file) first. */
#ifndef IPLOCK_TEST_STORE_FIXTURE_H
#define IPLOCK_TEST_STORE_FIXTURE_H

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <libpq-fe.h>

#include "store/store.h"

struct fx {
	char dir[64];
	char path[1024];
	char dbname[64];        /* PostgreSQL: this test's database */
	struct store *st;
};

static const char *pg_base;     /* IPLOCK_TEST_PG, NULL = SQLite */

/* Runs one statement on the cluster's maintenance database (or on path). */
static void pg_exec(const char *conninfo, const char *sql)
{
	PGconn *c = PQconnectdb(conninfo);
	PGresult *r;

	assert_int_equal(PQstatus(c), CONNECTION_OK);
	r = PQexec(c, sql);
	if (PQresultStatus(r) != PGRES_COMMAND_OK && PQresultStatus(r) != PGRES_TUPLES_OK)
		fail_msg("%s: %s", sql, PQresultErrorMessage(r));
	PQclear(r);
	PQfinish(c);
}

static int setup(void **state)
{
	struct fx *f = calloc(1, sizeof(*f));
	static int serial;

	assert_non_null(f);
	if (pg_base) {
		char sql[128];
		snprintf(f->dbname, sizeof(f->dbname), "iplock_%s%d_%d", STORE_FIXTURE_NAME,
			 (int)getpid(), ++serial);
		snprintf(sql, sizeof(sql), "CREATE DATABASE %s", f->dbname);
		pg_exec(pg_base, sql);
		snprintf(f->path, sizeof(f->path), "%s dbname=%s", pg_base, f->dbname);
	} else {
		snprintf(f->dir, sizeof(f->dir), "/tmp/iplock-%s-XXXXXX", STORE_FIXTURE_NAME);
		assert_non_null(mkdtemp(f->dir));
		snprintf(f->path, sizeof(f->path), "%s/%s.db", f->dir, STORE_FIXTURE_NAME);
	}
	assert_int_equal(store_open(f->path, &f->st), 0);
	*state = f;
	return 0;
}

static int teardown(void **state)
{
	struct fx *f = *state;
	char cmd[128];

	store_close(f->st);
	if (pg_base) {
		snprintf(cmd, sizeof(cmd), "DROP DATABASE %s WITH (FORCE)", f->dbname);
		pg_exec(pg_base, cmd);
	} else {
		snprintf(cmd, sizeof(cmd), "rm -rf %s", f->dir);
		assert_int_equal(system(cmd), 0);
	}
	free(f);
	return 0;
}

/* Picks the backend from argv[1] or IPLOCK_TEST_PG (empty = SQLite) and says which. */
static void store_fixture_init(int argc, char **argv, const char *test)
{
	pg_base = argc > 1 ? argv[1] : getenv("IPLOCK_TEST_PG");
	if (pg_base && !pg_base[0])
		pg_base = NULL;
	printf("%s: backend %s\n", test, pg_base ? "postgresql" : "sqlite");
}

#endif

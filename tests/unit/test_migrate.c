/* Unit tests of the migrations ledger logic: file naming, ordering, checksums and the plan. */
#include <criterion/criterion.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "solarx/migrate.h"

static char dir[64];

static void put(const char *name, const char *sql)
{
    char path[256];
    snprintf(path, sizeof(path), "%s/%s", dir, name);
    FILE *f = fopen(path, "w");
    cr_assert_not_null(f);
    fputs(sql, f);
    fclose(f);
}

static void make_dir(void)
{
    strcpy(dir, "/tmp/solarx-migrations-XXXXXX");
    cr_assert_not_null(mkdtemp(dir));
}

static void remove_dir(void)
{
    char cmd[128];
    snprintf(cmd, sizeof(cmd), "rm -rf %s", dir);
    cr_assert_eq(system(cmd), 0);
}

TestSuite(migrate, .init = make_dir, .fini = remove_dir);

Test(migrate, files_are_sorted_by_version_not_by_name)
{
    put("0010_ten.sql", "select 10;");
    put("0002_two.sql", "select 2;");
    put("0001_one.sql", "select 1;");
    put("README.txt", "not a migration");
    struct migration_set set;
    char err[256];
    cr_assert_eq(migrate_scan_dir(dir, &set, err, sizeof(err)), 0, "%s", err);
    cr_assert_eq(set.count, 3);
    cr_assert_eq(set.items[0].version, 1);
    cr_assert_eq(set.items[1].version, 2);
    cr_assert_eq(set.items[2].version, 10);
    cr_assert_str_eq(set.items[2].name, "ten");
    cr_assert_str_eq(set.items[0].sql, "select 1;");
    migrate_set_free(&set);
}

Test(migrate, checksum_is_sha256_of_the_bytes)
{
    char sum[MIGRATE_CHECKSUM_SIZE];
    migrate_checksum("abc", 3, sum);
    cr_assert_str_eq(sum, "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad");
    migrate_checksum("", 0, sum);
    cr_assert_str_eq(sum, "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855");
}

Test(migrate, bad_file_names_are_refused_with_the_name)
{
    struct migration_set set;
    char err[512];
    put("1_short.sql", "select 1;");
    cr_assert_eq(migrate_scan_dir(dir, &set, err, sizeof(err)), -1);
    cr_assert(strstr(err, "1_short.sql"), "%s", err);
    cr_assert(strstr(err, "NNNN_name.sql"), "%s", err);
}

Test(migrate, version_zero_and_odd_characters_are_refused)
{
    struct migration_set set;
    char err[512];
    put("0000_zero.sql", "select 0;");
    cr_assert_eq(migrate_scan_dir(dir, &set, err, sizeof(err)), -1);
    cr_assert(strstr(err, "0000_zero.sql"), "%s", err);
    remove_dir();
    make_dir();
    put("0001_with-dash.sql", "select 1;");
    cr_assert_eq(migrate_scan_dir(dir, &set, err, sizeof(err)), -1);
    cr_assert(strstr(err, "0001_with-dash.sql"), "%s", err);
}

Test(migrate, duplicate_versions_are_refused)
{
    struct migration_set set;
    char err[512];
    put("0001_a.sql", "select 1;");
    put("0001_b.sql", "select 1;");
    cr_assert_eq(migrate_scan_dir(dir, &set, err, sizeof(err)), -1);
    cr_assert(strstr(err, "same version 0001"), "%s", err);
}

Test(migrate, missing_directory_is_named)
{
    struct migration_set set;
    char err[512];
    cr_assert_eq(migrate_scan_dir("/nonexistent/migrations", &set, err, sizeof(err)), -1);
    cr_assert(strstr(err, "/nonexistent/migrations"), "%s", err);
}

static struct migration_set three_files(void)
{
    put("0001_one.sql", "select 1;");
    put("0002_two.sql", "select 2;");
    put("0003_three.sql", "select 3;");
    struct migration_set set;
    char err[256];
    cr_assert_eq(migrate_scan_dir(dir, &set, err, sizeof(err)), 0, "%s", err);
    return set;
}

Test(migrate, plan_on_an_empty_ledger_applies_everything)
{
    struct migration_set set = three_files();
    char err[256];
    cr_assert_eq(migrate_plan(&set, NULL, 0, err, sizeof(err)), 0);
    migrate_set_free(&set);
}

Test(migrate, plan_continues_after_the_applied_prefix)
{
    struct migration_set set = three_files();
    struct migration_applied applied[] = {{1, "one", set.items[0].checksum},
                                          {2, "two", set.items[1].checksum}};
    char err[256];
    cr_assert_eq(migrate_plan(&set, applied, 2, err, sizeof(err)), 2);
    struct migration_applied all[] = {{1, "one", set.items[0].checksum},
                                      {2, "two", set.items[1].checksum},
                                      {3, "three", set.items[2].checksum}};
    cr_assert_eq(migrate_plan(&set, all, 3, err, sizeof(err)), 3, "nothing pending");
    migrate_set_free(&set);
}

Test(migrate, plan_refuses_a_changed_file)
{
    struct migration_set set = three_files();
    struct migration_applied applied[] = {{1, "one", set.items[0].checksum},
                                          {2, "two", "0000deadbeef"}};
    char err[512];
    cr_assert_eq(migrate_plan(&set, applied, 2, err, sizeof(err)), -1);
    cr_assert(strstr(err, "0002_two.sql"), "%s", err);
    cr_assert(strstr(err, "must not change"), "%s", err);
    migrate_set_free(&set);
}

Test(migrate, plan_refuses_a_file_slipped_in_behind_the_ledger)
{
    struct migration_set set = three_files();
    struct migration_applied applied[] = {{1, "one", set.items[0].checksum},
                                          {3, "three", set.items[2].checksum}};
    char err[512];
    cr_assert_eq(migrate_plan(&set, applied, 2, err, sizeof(err)), -1);
    cr_assert(strstr(err, "0002_two.sql"), "%s", err);
    cr_assert(strstr(err, "never applied"), "%s", err);
    migrate_set_free(&set);
}

Test(migrate, the_shipped_migrations_scan_in_order)
{
    struct migration_set set;
    char err[256];
    cr_assert_eq(migrate_scan_dir(SOLARX_SOURCE_DIR "/migrations", &set, err, sizeof(err)), 0, "%s",
                 err);
    cr_assert_geq(set.count, 4);
    /* Numbers are allocated to branches ahead of time, so a gap can exist until they all land. */
    cr_assert_eq(set.items[0].version, 1);
    for (size_t i = 1; i < set.count; i++)
        cr_assert_gt(set.items[i].version, set.items[i - 1].version, "versions increase");
    migrate_set_free(&set);
}

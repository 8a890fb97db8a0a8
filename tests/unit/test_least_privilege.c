/* Unit tests of least privilege without a server: which roles `migrate` refuses and why, and the
 * [postgres] migrate_conninfo / migrate_password_file keys that give migrations their own role. */
#include <criterion/criterion.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "solarx/config.h"
#include "solarx/migrate.h"

Test(migrate_privileges, the_owner_or_a_member_of_it_may_migrate)
{
    char err[512] = "";
    struct migrate_privileges owner = {"solarx_migrate", "solarx", true, ""};
    cr_assert(migrate_privileges_ok(&owner, err, sizeof(err)));
    cr_assert_str_eq(err, "");
    struct migrate_privileges fresh = {"solarx_migrate", "solarx", true, NULL};
    cr_assert(migrate_privileges_ok(&fresh, err, sizeof(err)), "no schema yet: CREATE suffices");
}

Test(migrate_privileges, the_runtime_role_is_refused_naming_the_owner_and_the_remedy)
{
    char err[512];
    struct migrate_privileges app = {"solarx_app", "solarx", false,
                                     "solarx_meta owned by solarx_owner"};
    cr_assert_not(migrate_privileges_ok(&app, err, sizeof(err)));
    cr_assert(strstr(err, "role \"solarx_app\" may not run migrations"), "%s", err);
    cr_assert(strstr(err, "solarx_meta owned by solarx_owner"), "%s", err);
    cr_assert(strstr(err, "[postgres] migrate_conninfo"), "%s", err);
}

Test(migrate_privileges, no_create_on_the_database_is_refused_naming_it)
{
    char err[512];
    struct migrate_privileges app = {"solarx_app", "warehouse", false, ""};
    cr_assert_not(migrate_privileges_ok(&app, err, sizeof(err)));
    cr_assert(strstr(err, "no CREATE privilege on database \"warehouse\""), "%s", err);
    cr_assert(strstr(err, "migrate_conninfo"), "%s", err);
}

static char path[64];

static struct config *load(const char *text, char **envp)
{
    char err[512];
    strcpy(path, "/tmp/solarx-lp-conf-XXXXXX");
    int fd = mkstemp(path);
    cr_assert(fd >= 0);
    cr_assert_eq(write(fd, text, strlen(text)), (ssize_t)strlen(text));
    close(fd);
    struct config *cfg = config_load(path, envp, err, sizeof(err));
    unlink(path);
    cr_assert_not_null(cfg, "%s", err);
    return cfg;
}

Test(migrate_config, unset_means_the_runtime_connection)
{
    char *env[] = {NULL};
    struct config *cfg = load("[postgres]\nconninfo = dbname=w user=solarx_app\n", env);
    cr_assert(cfg->pg_migrate_conninfo == NULL || cfg->pg_migrate_conninfo[0] == '\0');
    cr_assert_null(cfg->pg_migrate_password);
    config_destroy(cfg);
}

Test(migrate_config, migrate_conninfo_and_its_password_file)
{
    char secret[] = "/tmp/solarx-lp-secret-XXXXXX";
    int fd = mkstemp(secret);
    cr_assert(write(fd, "m1gr4te\n", 8) == 8);
    close(fd);
    char text[512];
    snprintf(text, sizeof(text),
             "[postgres]\nconninfo = dbname=w user=solarx_app\n"
             "migrate_conninfo = dbname=w user=solarx_migrate\nmigrate_password_file = %s\n",
             secret);
    char *env[] = {NULL};
    struct config *cfg = load(text, env);
    cr_assert_str_eq(cfg->pg_conninfo, "dbname=w user=solarx_app");
    cr_assert_str_eq(cfg->pg_migrate_conninfo, "dbname=w user=solarx_migrate");
    cr_assert_str_eq(cfg->pg_migrate_password, "m1gr4te", "the file's contents, not its name");
    cr_assert_null(cfg->pg_password, "the runtime role's password is not the migration role's");
    config_destroy(cfg);

    char env_conninfo[] = "SOLARX_POSTGRES_MIGRATE_CONNINFO=dbname=x user=owner";
    char *env2[] = {env_conninfo, NULL};
    cfg = load(text, env2);
    cr_assert_str_eq(cfg->pg_migrate_conninfo, "dbname=x user=owner");
    config_destroy(cfg);
    unlink(secret);
}

Test(migrate_config, an_unreadable_migrate_password_file_is_named)
{
    char err[512];
    strcpy(path, "/tmp/solarx-lp-conf-XXXXXX");
    int fd = mkstemp(path);
    const char *text = "[postgres]\nmigrate_password_file = /nonexistent/pw\n";
    cr_assert_eq(write(fd, text, strlen(text)), (ssize_t)strlen(text));
    close(fd);
    char *env[] = {NULL};
    cr_assert_null(config_load(path, env, err, sizeof(err)));
    unlink(path);
    cr_assert(strstr(err, ":2:"), "%s", err);
    cr_assert(strstr(err, "migrate_password_file"), "%s", err);
    cr_assert(strstr(err, "/nonexistent/pw"), "%s", err);
}

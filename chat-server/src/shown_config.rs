//! `--print-config`: the configuration a command runs with (its flags, `CHAT_*` variables and
//! defaults), one `CHAT_*=value` line a setting, so the output also serves as an environment
//! file. Values of secret settings are masked; of a database URL, only the password.

use std::fmt::Write as _;

use clap::{ArgMatches, Command};

const MASK: &str = "********";

/// The settings of the command `matches` selects within `command`.
pub(crate) fn render(command: &Command, matches: &ArgMatches) -> String {
    let (command, matches) = selected(command, matches);
    let mut out = String::new();
    for arg in command.get_arguments() {
        let Some(env) = arg.get_env() else {
            continue;
        };
        let env = env.to_string_lossy();
        let id = arg.get_id().as_str();
        if id == "print_config" {
            continue;
        }
        let Some(values) = matches.get_raw(id) else {
            let _ = writeln!(out, "# {env} is not set");
            continue;
        };
        let value = values
            .map(|v| v.to_string_lossy())
            .collect::<Vec<_>>()
            .join(",");
        // Secret settings are the ones clap already keeps out of `--help`.
        let value = match (arg.is_hide_env_values_set(), id) {
            (false, _) => value,
            (true, "database_url") => mask_url_password(&value),
            (true, _) => MASK.to_owned(),
        };
        let _ = writeln!(out, "{env}={value}");
    }
    out
}

/// The innermost subcommand named, with its matches.
fn selected<'a>(
    mut command: &'a Command,
    mut matches: &'a ArgMatches,
) -> (&'a Command, &'a ArgMatches) {
    while let Some((name, sub_matches)) = matches.subcommand() {
        let Some(sub) = command.find_subcommand(name) else {
            break;
        };
        command = sub;
        matches = sub_matches;
    }
    (command, matches)
}

/// The URL with the password of its user info and of any `password=` parameter masked.
fn mask_url_password(url: &str) -> String {
    let Some((scheme, rest)) = url.split_once("://") else {
        return url.to_owned();
    };
    // The last `@` ends the user info: a password may hold `@`, `/` or `?` unencoded, and
    // masking too much is the safe way to be wrong.
    let (userinfo, rest) = match rest.rsplit_once('@') {
        Some((userinfo, host)) => match userinfo.split_once(':') {
            Some((user, _)) => (format!("{user}:{MASK}@"), host),
            None => (format!("{userinfo}@"), host),
        },
        None => (String::new(), rest),
    };
    let rest = match rest.split_once('?') {
        Some((path, query)) => {
            let query: Vec<String> = query
                .split('&')
                .map(|pair| match pair.split_once('=') {
                    Some((key, _)) if key.eq_ignore_ascii_case("password") => {
                        format!("{key}={MASK}")
                    }
                    _ => pair.to_owned(),
                })
                .collect();
            format!("{path}?{}", query.join("&"))
        }
        None => rest.to_owned(),
    };
    format!("{scheme}://{userinfo}{rest}")
}

#[cfg(test)]
mod tests {
    use super::mask_url_password;

    #[test]
    fn only_the_password_of_a_url_is_masked() {
        for (url, shown) in [
            (
                "postgres://chat:s3cret@db.internal:5432/chat?sslmode=require",
                "postgres://chat:********@db.internal:5432/chat?sslmode=require",
            ),
            (
                "postgres://chat:p@ss/w?rd@db/chat",
                "postgres://chat:********@db/chat",
            ),
            (
                "postgresql://db/chat?user=chat&Password=s3cret",
                "postgresql://db/chat?user=chat&Password=********",
            ),
            ("postgres://chat@db/chat", "postgres://chat@db/chat"),
            (
                "sqlite:///var/lib/chat/chat.db",
                "sqlite:///var/lib/chat/chat.db",
            ),
            ("sqlite:chat.db", "sqlite:chat.db"),
        ] {
            assert_eq!(mask_url_password(url), shown, "{url}");
        }
    }
}

//! `--print-config`: the configuration a command runs with (its flags, `CHAT_*` variables and
//! defaults), one `CHAT_*=value` line a setting, so the output also serves as an environment
//! file. Values of secret settings are masked; of a URL (database, broker, webhooks), only the
//! password.

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
        // Secret settings are the ones clap already keeps out of `--help`; of a URL, only the
        // password is.
        let value = values
            .map(|v| {
                let v = v.to_string_lossy();
                match (arg.is_hide_env_values_set(), id) {
                    (false, _) => v.into_owned(),
                    (true, "database_url" | "amqp_url" | "webhook_urls") => mask_url_password(&v),
                    (true, _) => MASK.to_owned(),
                }
            })
            .collect::<Vec<_>>()
            .join(",");
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
    use clap::CommandFactory;

    use super::{mask_url_password, render};
    use crate::Config;

    #[test]
    fn event_sink_secrets_are_masked() {
        let command = Config::command();
        let matches = command
            .clone()
            .try_get_matches_from([
                "chat-server",
                "--amqp-url",
                "amqp://chat:amqp-pw@broker.invalid/%2f",
                "--webhook-urls",
                "http://hooks.invalid/a,http://u:hook-pw@hooks.invalid/b",
                "--webhook-secret",
                "a webhook secret of 32 bytes or more",
            ])
            .unwrap();
        let shown = render(&command, &matches);
        for line in [
            "CHAT_AMQP_URL=amqp://chat:********@broker.invalid/%2f",
            "CHAT_WEBHOOK_URLS=http://hooks.invalid/a,http://u:********@hooks.invalid/b",
            "CHAT_WEBHOOK_SECRET=********",
        ] {
            assert!(shown.lines().any(|l| l == line), "{line} in:\n{shown}");
        }
    }

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

//! The `chat-server` program's command line: `serve` (the default), `migrate`, `user create`
//! and `user set-password`. Every command takes the server's whole configuration, so a
//! command run with the server's environment acts on the server's store and uploads; every
//! flag is also a `CHAT_*` variable.

use std::io::BufRead;
use std::process::ExitCode;

use chat_core::engine::Register;
use clap::builder::BoolishValueParser;
use clap::{ArgAction, ArgGroup, Args, CommandFactory, FromArgMatches, Parser, Subcommand};

use crate::logging::{self, Output};
use crate::{operator, shown_config, Config, StartError};

#[derive(Parser)]
#[command(
    name = "chat-server",
    version,
    about = "A chat server: HTTP + WebSocket API over chat-core",
    args_conflicts_with_subcommands = true
)]
struct Cli {
    #[command(subcommand)]
    command: Option<Command>,
    /// The settings of `serve` when no command is named.
    #[command(flatten)]
    config: Config,
    /// Print the configuration the command would run with (flags, `CHAT_*` variables and
    /// defaults; secrets masked) and exit.
    #[arg(
        long,
        global = true,
        env = "CHAT_PRINT_CONFIG",
        action = ArgAction::SetTrue,
        value_parser = BoolishValueParser::new()
    )]
    print_config: bool,
}

#[derive(Subcommand)]
enum Command {
    /// Serve the chat API (the default command).
    Serve(Config),
    /// Apply the store's migrations and exit (`serve` also applies them when it starts).
    Migrate(Config),
    /// Manage user accounts.
    #[command(subcommand)]
    User(UserCommand),
}

#[derive(Subcommand)]
enum UserCommand {
    /// Create a user, as registering does, and print it as JSON.
    Create(CreateUser),
    /// Set a user's password and sign every session of theirs out.
    SetPassword(SetPassword),
}

#[derive(Args)]
struct CreateUser {
    /// 3-32 characters of `[A-Za-z0-9_.-]`, unique whatever the case.
    #[arg(long, env = "CHAT_USER_USERNAME")]
    username: String,
    #[command(flatten)]
    password: NewPassword,
    /// The name shown to others; default: the username.
    #[arg(long, env = "CHAT_USER_DISPLAY_NAME")]
    display_name: Option<String>,
    /// An email address, unique whatever the case.
    #[arg(long, env = "CHAT_USER_EMAIL")]
    email: Option<String>,
    #[command(flatten, next_help_heading = "Server settings")]
    config: Config,
}

#[derive(Args)]
struct SetPassword {
    /// The user whose password is set.
    #[arg(long, env = "CHAT_USER_USERNAME")]
    username: String,
    #[command(flatten)]
    password: NewPassword,
    #[command(flatten, next_help_heading = "Server settings")]
    config: Config,
}

/// A password, given in a flag or variable, or read from standard input.
#[derive(Args)]
#[command(group(ArgGroup::new("password_source").required(true).args(["password", "password_stdin"])))]
struct NewPassword {
    /// The password, 8-1024 characters. Arguments show in `ps` to every local user: prefer
    /// `--password-stdin`, or this variable.
    #[arg(long, env = "CHAT_USER_PASSWORD", hide_env_values = true)]
    password: Option<String>,
    /// Read the password from the first line of standard input.
    #[arg(
        long,
        env = "CHAT_USER_PASSWORD_STDIN",
        action = ArgAction::SetTrue,
        value_parser = BoolishValueParser::new()
    )]
    password_stdin: bool,
}

impl NewPassword {
    /// The password: the given one, or the first line of standard input without its line
    /// ending (the rest of the line, spaces included, is the password).
    fn read(self) -> Result<String, StartError> {
        if let Some(password) = self.password {
            return Ok(password);
        }
        let mut line = String::new();
        std::io::stdin().lock().read_line(&mut line)?;
        let password = line.strip_suffix('\n').unwrap_or(&line);
        Ok(password.strip_suffix('\r').unwrap_or(password).to_owned())
    }
}

/// Runs the command the process's arguments name, and says how it went.
pub async fn run() -> ExitCode {
    let mut command = Cli::command();
    let matches = command.get_matches_mut();
    let cli = match Cli::from_arg_matches(&matches) {
        Ok(cli) => cli,
        Err(e) => e.exit(),
    };
    if cli.print_config {
        print!("{}", shown_config::render(&command, &matches));
        return ExitCode::SUCCESS;
    }
    match cli.command.unwrap_or(Command::Serve(cli.config)) {
        Command::Serve(config) => serve(config).await,
        Command::Migrate(config) => {
            logging::init(&config, Output::Stderr);
            report(
                operator::migrate(&config)
                    .await
                    .map(|()| "the store's migrations are applied".to_owned()),
            )
        }
        Command::User(UserCommand::Create(user)) => {
            logging::init(&user.config, Output::Stderr);
            let created = async {
                let input = Register {
                    username: user.username,
                    password: user.password.read()?,
                    email: user.email,
                    display_name: user.display_name,
                };
                let created = operator::create_user(&user.config, input).await?;
                Ok(serde_json::to_string(&created).map_err(std::io::Error::from)?)
            };
            report(created.await)
        }
        Command::User(UserCommand::SetPassword(user)) => {
            logging::init(&user.config, Output::Stderr);
            let set = async {
                let password = user.password.read()?;
                operator::set_password(&user.config, &user.username, &password).await?;
                Ok(format!(
                    "the password of {} is set; every session of theirs is signed out",
                    user.username
                ))
            };
            report(set.await)
        }
    }
}

/// A command's outcome: its result on standard output, or its error on standard error.
fn report(outcome: Result<String, StartError>) -> ExitCode {
    match outcome {
        Ok(result) => {
            println!("{result}");
            ExitCode::SUCCESS
        }
        Err(e) => {
            eprintln!("chat-server: {e}");
            ExitCode::FAILURE
        }
    }
}

/// Serves until Ctrl-C or SIGTERM, then shuts down gracefully.
async fn serve(config: Config) -> ExitCode {
    logging::init(&config, Output::Stdout);
    let server = match crate::start(config).await {
        Ok(server) => server,
        Err(e) => {
            tracing::error!(error = %e, "chat-server could not start");
            return ExitCode::FAILURE;
        }
    };
    tracing::info!(addr = %server.addr(), "chat-server listening on http://{}", server.addr());
    wait_for_signal().await;
    tracing::info!("shutting down");
    server.shutdown().await;
    ExitCode::SUCCESS
}

/// Resolves on Ctrl-C, or SIGTERM (what service managers send).
async fn wait_for_signal() {
    #[cfg(unix)]
    {
        let mut term =
            match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) {
                Ok(term) => term,
                Err(e) => {
                    tracing::warn!(error = %e, "cannot listen for SIGTERM; Ctrl-C still works");
                    let _ = tokio::signal::ctrl_c().await;
                    return;
                }
            };
        tokio::select! {
            _ = tokio::signal::ctrl_c() => {}
            _ = term.recv() => {}
        }
    }
    #[cfg(not(unix))]
    let _ = tokio::signal::ctrl_c().await;
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parse(args: &[&str]) -> Result<Cli, clap::Error> {
        Cli::try_parse_from(std::iter::once("chat-server").chain(args.iter().copied()))
    }

    #[test]
    fn serving_is_the_default_and_takes_the_flags_it_always_took() {
        let cli = parse(&["--addr", "127.0.0.1:9000", "--rate-limits", "off"]).unwrap();
        assert!(cli.command.is_none());
        assert_eq!(cli.config.addr.port(), 9000);
        let Some(Command::Serve(config)) = parse(&["serve", "--addr", "127.0.0.1:9001"])
            .unwrap()
            .command
        else {
            panic!("serve");
        };
        assert_eq!(config.addr.port(), 9001);
        // Settings go after the command they are for.
        assert!(parse(&["--addr", "127.0.0.1:9000", "migrate"]).is_err());
    }

    #[test]
    fn a_user_command_needs_exactly_one_password_source() {
        assert!(parse(&["user", "create", "--username", "ann"]).is_err());
        assert!(parse(&[
            "user",
            "create",
            "--username",
            "ann",
            "--password",
            "x",
            "--password-stdin"
        ])
        .is_err());
        let Some(Command::User(UserCommand::SetPassword(set))) = parse(&[
            "user",
            "set-password",
            "--username",
            "ann",
            "--password-stdin",
            "--data-dir",
            "/tmp/chat",
        ])
        .unwrap()
        .command
        else {
            panic!("user set-password");
        };
        assert!(set.password.password_stdin && set.password.password.is_none());
        assert_eq!(set.config.data_dir, std::path::Path::new("/tmp/chat"));
    }

    #[test]
    fn every_command_has_help() {
        for args in [
            &["--help"][..],
            &["serve", "--help"],
            &["migrate", "--help"],
            &["user", "--help"],
            &["user", "create", "--help"],
            &["user", "set-password", "--help"],
        ] {
            let e = parse(args).err().expect("help is shown instead");
            assert_eq!(e.kind(), clap::error::ErrorKind::DisplayHelp, "{args:?}");
        }
    }
}

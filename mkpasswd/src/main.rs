//! `mkpasswd`: prints a random password (or one typed twice with `-p`) and
//! its bcrypt hash, for use as `password` in a nats-server configuration.
//! Flags, output and messages follow the nats-server `util/mkpasswd` tool.

use std::io::{IsTerminal, Write};
use std::process::ExitCode;

use rand::Rng;

const USAGE: &str = "Usage: mkpasswd [-p <stdin password>] [-c COST] ";
const DEFAULTS: &str =
    "  -c int\n    \tThe cost weight, range of 4-31 (default 11)\n  -p\tInput password via stdin\n";

const DEFAULT_COST: i64 = 11;
/// Go's bcrypt substitutes its default cost for anything below the minimum.
const GO_DEFAULT_COST: u32 = 10;
const MIN_COST: i64 = 4;
const MAX_COST: i64 = 31;

const PASSWORD_LEN: usize = 22;
const PASSWORD_ALPHABET: &[u8] =
    b"abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789!@$#%^&*()";

#[derive(Debug, PartialEq)]
struct Options {
    prompt: bool,
    cost: i64,
}

/// Why flag parsing stopped without options.
#[derive(Debug, PartialEq)]
enum FlagOutcome {
    /// `-h`/`-help`: usage, exit 0.
    Help,
    /// A bad flag: this message, then usage, exit 2.
    Error(String),
}

/// Go `flag`-package rules: one or two dashes, `-c 12` or `-c=12`, boolean
/// flags only take a value after `=`, parsing stops at the first non-flag.
fn parse_flags(args: &[String]) -> Result<Options, FlagOutcome> {
    let mut opts = Options {
        prompt: false,
        cost: DEFAULT_COST,
    };
    let mut i = 0;
    while i < args.len() {
        let arg = &args[i];
        i += 1;
        if arg.len() < 2 || !arg.starts_with('-') {
            break;
        }
        if arg == "--" {
            break;
        }
        let body = arg.strip_prefix("--").unwrap_or_else(|| &arg[1..]);
        if body.is_empty() || body.starts_with('-') || body.starts_with('=') {
            return Err(FlagOutcome::Error(format!("bad flag syntax: {}", arg)));
        }
        let (name, value) = match body.split_once('=') {
            Some((n, v)) => (n, Some(v)),
            None => (body, None),
        };
        match name {
            "p" => {
                opts.prompt = match value {
                    None => true,
                    Some(v) => parse_go_bool(v).ok_or_else(|| {
                        FlagOutcome::Error(format!(
                            "invalid boolean value \"{}\" for -p: parse error",
                            v
                        ))
                    })?,
                };
            }
            "c" => {
                let v = match value {
                    Some(v) => v.to_string(),
                    None if i < args.len() => {
                        i += 1;
                        args[i - 1].clone()
                    }
                    None => {
                        return Err(FlagOutcome::Error("flag needs an argument: -c".to_string()))
                    }
                };
                opts.cost = parse_go_int(&v).map_err(|why| {
                    FlagOutcome::Error(format!("invalid value \"{}\" for flag -c: {}", v, why))
                })?;
            }
            "h" | "help" => return Err(FlagOutcome::Help),
            _ => {
                return Err(FlagOutcome::Error(format!(
                    "flag provided but not defined: -{}",
                    name
                )))
            }
        }
    }
    Ok(opts)
}

fn parse_go_bool(v: &str) -> Option<bool> {
    match v {
        "1" | "t" | "T" | "true" | "TRUE" | "True" => Some(true),
        "0" | "f" | "F" | "false" | "FALSE" | "False" => Some(false),
        _ => None,
    }
}

/// Decimal integer with optional sign; Go's two failure wordings.
fn parse_go_int(v: &str) -> Result<i64, &'static str> {
    let digits = v.strip_prefix(['+', '-']).unwrap_or(v);
    if digits.is_empty() || !digits.bytes().all(|b| b.is_ascii_digit()) {
        return Err("parse error");
    }
    v.parse::<i64>().map_err(|_| "value out of range")
}

/// A new password: 22 characters, each drawn uniformly from the alphabet
/// with the operating system's CSPRNG.
fn generate_password() -> String {
    let mut rng = rand::rngs::OsRng;
    (0..PASSWORD_LEN)
        .map(|_| PASSWORD_ALPHABET[rng.gen_range(0..PASSWORD_ALPHABET.len())] as char)
        .collect()
}

/// Maps the requested cost the way Go's bcrypt does: below the minimum
/// means its default (10); above the maximum is an error.
fn effective_cost(cost: i64) -> Result<u32, String> {
    if cost > MAX_COST {
        return Err(format!(
            "crypto/bcrypt: cost {} is outside allowed range ({},{})",
            cost, MIN_COST, MAX_COST
        ));
    }
    if cost < MIN_COST {
        return Ok(GO_DEFAULT_COST);
    }
    Ok(cost as u32)
}

/// `$2a$<cost>$<salt><hash>`, the variant Go's bcrypt produces.
fn hash_password(password: &str, cost: i64) -> Result<String, String> {
    let cost = effective_cost(cost)?;
    bcrypt::hash_with_result(password, cost)
        .map(|parts| parts.format_for_version(bcrypt::Version::TwoA))
        .map_err(|e| e.to_string())
}

/// Reads one line from the terminal on stdin without echo.
fn read_hidden() -> std::io::Result<String> {
    let config = rpassword::ConfigBuilder::new()
        .input_file_path("/dev/stdin")
        // The caller prints the newlines itself, exactly as the reference.
        .output_discard()
        .build();
    rpassword::read_password_with_config(config)
}

fn print_usage() {
    println!("{}", USAGE);
    eprint!("{}", DEFAULTS);
}

fn flush_stdout() {
    let _ = std::io::stdout().flush();
}

fn run(args: &[String]) -> ExitCode {
    let opts = match parse_flags(args) {
        Ok(o) => o,
        Err(FlagOutcome::Help) => {
            print_usage();
            return ExitCode::SUCCESS;
        }
        Err(FlagOutcome::Error(msg)) => {
            eprintln!("{}", msg);
            print_usage();
            return ExitCode::from(2);
        }
    };

    let password = if opts.prompt {
        // term.ReadPassword in the reference fails this way off a terminal.
        if !std::io::stdin().is_terminal() {
            eprintln!("Error reading password: inappropriate ioctl for device");
            return ExitCode::FAILURE;
        }
        print!("Enter Password: ");
        flush_stdout();
        let first = match read_hidden() {
            Ok(p) => p,
            Err(e) => {
                eprintln!("Error reading password: {}", e);
                return ExitCode::FAILURE;
            }
        };
        print!("\nReenter Password: ");
        flush_stdout();
        let second = match read_hidden() {
            Ok(p) => p,
            Err(e) => {
                eprintln!("Error reading password: {}", e);
                return ExitCode::FAILURE;
            }
        };
        if first != second {
            flush_stdout();
            eprintln!("Error, passwords do not match");
            return ExitCode::FAILURE;
        }
        println!();
        first
    } else {
        let p = generate_password();
        println!("pass: {}", p);
        p
    };

    match hash_password(&password, opts.cost) {
        Ok(hash) => {
            println!("bcrypt hash: {}", hash);
            ExitCode::SUCCESS
        }
        Err(e) => {
            flush_stdout();
            eprintln!("Error producing bcrypt hash: {}", e);
            ExitCode::FAILURE
        }
    }
}

fn main() -> ExitCode {
    let args: Vec<String> = std::env::args().skip(1).collect();
    run(&args)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn args(list: &[&str]) -> Vec<String> {
        list.iter().map(|s| s.to_string()).collect()
    }

    #[test]
    fn hash_has_2a_prefix_and_verifies() {
        let hash = hash_password("s3cr3t!", 4).unwrap();
        assert!(hash.starts_with("$2a$04$"), "{hash}");
        assert_eq!(hash.len(), 60);
        assert!(bcrypt::verify("s3cr3t!", &hash).unwrap());
        assert!(!bcrypt::verify("other", &hash).unwrap());
    }

    #[test]
    fn default_cost_is_11() {
        let hash = hash_password("pw", DEFAULT_COST).unwrap();
        assert!(hash.starts_with("$2a$11$"), "{hash}");
    }

    #[test]
    fn verifies_hash_made_by_reference_tool() {
        // captured from the Go tool (tools.md C.1)
        assert!(bcrypt::verify(
            "6L1omodnp0kT!za!JBslBl",
            "$2a$04$SsK.SNIc4h/uzI.3oZJgDuruKHkvnAXa70WU8Xyi/B1tjx9PzY6Gq"
        )
        .unwrap());
    }

    #[test]
    fn cost_range_follows_go_bcrypt() {
        assert_eq!(effective_cost(4), Ok(4));
        assert_eq!(effective_cost(31), Ok(31));
        assert_eq!(effective_cost(3), Ok(10));
        assert_eq!(effective_cost(-1), Ok(10));
        assert_eq!(
            effective_cost(32),
            Err("crypto/bcrypt: cost 32 is outside allowed range (4,31)".to_string())
        );
    }

    #[test]
    fn generated_passwords() {
        for _ in 0..50 {
            let p = generate_password();
            assert_eq!(p.len(), 22);
            assert!(p.bytes().all(|b| PASSWORD_ALPHABET.contains(&b)), "{p}");
        }
        assert_ne!(generate_password(), generate_password());
        assert_eq!(PASSWORD_ALPHABET.len(), 72);
    }

    #[test]
    fn go_style_flags() {
        let ok = |a: &[&str]| parse_flags(&args(a)).unwrap();
        assert_eq!(
            ok(&[]),
            Options {
                prompt: false,
                cost: 11
            }
        );
        assert_eq!(ok(&["-c", "12"]).cost, 12);
        assert_eq!(ok(&["--c", "12"]).cost, 12);
        assert_eq!(ok(&["-c=12"]).cost, 12);
        assert_eq!(ok(&["--c=5", "-p"]).cost, 5);
        assert!(ok(&["-p"]).prompt);
        assert!(ok(&["--p"]).prompt);
        assert!(ok(&["-p=true"]).prompt);
        assert!(!ok(&["-p=false"]).prompt);
        // parsing stops at the first non-flag argument
        assert!(!ok(&["extra", "-p"]).prompt);
        assert!(!ok(&["--", "-p"]).prompt);
    }

    #[test]
    fn flag_errors() {
        let err = |a: &[&str]| parse_flags(&args(a)).unwrap_err();
        assert_eq!(err(&["-h"]), FlagOutcome::Help);
        assert_eq!(err(&["--help"]), FlagOutcome::Help);
        assert_eq!(
            err(&["-x"]),
            FlagOutcome::Error("flag provided but not defined: -x".into())
        );
        assert_eq!(
            err(&["-c", "abc"]),
            FlagOutcome::Error("invalid value \"abc\" for flag -c: parse error".into())
        );
        assert_eq!(
            err(&["-c=99999999999999999999"]),
            FlagOutcome::Error(
                "invalid value \"99999999999999999999\" for flag -c: value out of range".into()
            )
        );
        assert_eq!(
            err(&["-c"]),
            FlagOutcome::Error("flag needs an argument: -c".into())
        );
        assert_eq!(
            err(&["-p=maybe"]),
            FlagOutcome::Error("invalid boolean value \"maybe\" for -p: parse error".into())
        );
        assert_eq!(
            err(&["---p"]),
            FlagOutcome::Error("bad flag syntax: ---p".into())
        );
    }
}

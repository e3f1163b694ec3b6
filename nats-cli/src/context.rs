//! `nats context`: named connection settings stored as JSON files, and their merging with
//! the global flags.

use crate::{logf, Global};
use anyhow::{anyhow, bail, Context as _, Result};
use clap::Subcommand;
use serde::{Deserialize, Serialize};
use std::io::{BufRead, IsTerminal, Write};
use std::path::{Path, PathBuf};

/// A context file. Keys and their order follow the reference.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default)]
pub struct Context {
    pub description: String,
    pub url: String,
    pub token: String,
    pub user: String,
    pub password: String,
    pub creds: String,
    pub nkey: String,
    pub cert: String,
    pub key: String,
    pub ca: String,
    pub nsc: String,
    pub jetstream_domain: String,
    pub jetstream_api_prefix: String,
    pub jetstream_event_prefix: String,
    pub inbox_prefix: String,
}

#[derive(Subcommand, Debug)]
pub enum Cmd {
    /// Update or create a context
    #[command(visible_aliases = ["add", "create"])]
    Save {
        name: String,
        /// Set a friendly description for this context
        #[arg(long)]
        description: Option<String>,
        /// Select the saved context as the default one
        #[arg(long)]
        select: bool,
    },
    /// List known contexts
    #[command(visible_aliases = ["list", "l"])]
    Ls,
    /// Select the default context
    #[command(visible_aliases = ["switch", "set"])]
    Select { name: Option<String> },
    /// Display information on the current or named context
    #[command(visible_alias = "show")]
    Info {
        name: Option<String>,
        /// Display the context in JSON format
        #[arg(long)]
        json: bool,
        /// Attempts to connect to NATS using the context while validating
        #[arg(long)]
        connect: bool,
    },
    /// Remove a context
    #[command(visible_alias = "remove")]
    Rm {
        name: String,
        /// Force deletion without prompting
        #[arg(short = 'f', long)]
        force: bool,
    },
    /// Edit a context in your EDITOR
    #[command(visible_alias = "vi")]
    Edit { name: String },
    /// Copy a context
    #[command(visible_alias = "cp")]
    Copy { source: String, destination: String },
    /// Validate one or all contexts
    Validate { name: Option<String> },
}

pub fn config_dir() -> PathBuf {
    let base = match std::env::var_os("XDG_CONFIG_HOME").filter(|v| !v.is_empty()) {
        Some(x) => PathBuf::from(x),
        None => {
            let home = std::env::var_os("HOME").unwrap_or_default();
            PathBuf::from(home).join(".config")
        }
    };
    base.join("nats")
}

fn context_dir() -> PathBuf {
    config_dir().join("context")
}

fn selected_file() -> PathBuf {
    config_dir().join("context.txt")
}

fn context_path(name: &str) -> PathBuf {
    context_dir().join(format!("{name}.json"))
}

fn valid_name(name: &str) -> Result<()> {
    if name.is_empty() || name.contains(['/', '\\']) || name.starts_with('.') || name.contains("..")
    {
        bail!("invalid context name {name:?}");
    }
    Ok(())
}

/// The selected context name, if any.
pub fn selected() -> Option<String> {
    let s = std::fs::read_to_string(selected_file()).ok()?;
    let s = s.trim();
    (!s.is_empty()).then(|| s.to_string())
}

fn read_file(path: &Path) -> Result<Context> {
    let data = std::fs::read(path)?;
    serde_json::from_slice(&data)
        .with_context(|| format!("invalid context file {}", path.display()))
}

/// Loads a context by name, or from a path when it ends in `.json`.
pub fn load(name_or_path: &str) -> Result<(String, Context, PathBuf)> {
    if name_or_path.ends_with(".json") {
        let p = PathBuf::from(name_or_path);
        let name = p
            .file_stem()
            .map(|s| s.to_string_lossy().into_owned())
            .unwrap_or_default();
        let c = read_file(&p).map_err(|_| anyhow!("unknown context {name_or_path:?}"))?;
        return Ok((name, c, p));
    }
    valid_name(name_or_path)?;
    let p = context_path(name_or_path);
    if !p.exists() {
        bail!("unknown context {name_or_path:?}");
    }
    Ok((name_or_path.to_string(), read_file(&p)?, p))
}

/// The context the flags point at (`--context`, `NATS_CONTEXT` or the selected one) with
/// every given flag laid over it.
pub fn effective(g: &Global) -> Result<Context> {
    let mut c = match g.context.as_deref().filter(|s| !s.is_empty()) {
        Some(n) => load(n)?.1,
        None => match selected() {
            Some(n) => load(&n).map(|x| x.1).unwrap_or_default(),
            None => Context::default(),
        },
    };
    overlay(&mut c, g);
    Ok(c)
}

fn overlay(c: &mut Context, g: &Global) {
    let set = |dst: &mut String, v: &Option<String>| {
        if let Some(v) = v {
            *dst = v.clone();
        }
    };
    set(&mut c.url, &g.server);
    set(&mut c.user, &g.user);
    set(&mut c.password, &g.password);
    set(&mut c.creds, &g.creds);
    set(&mut c.nkey, &g.nkey);
    set(&mut c.cert, &g.tlscert);
    set(&mut c.key, &g.tlskey);
    set(&mut c.ca, &g.tlsca);
    set(&mut c.inbox_prefix, &g.inbox_prefix);
    set(&mut c.jetstream_api_prefix, &g.js_api_prefix);
    set(&mut c.jetstream_event_prefix, &g.js_event_prefix);
    set(&mut c.jetstream_domain, &g.js_domain);
}

fn write(name: &str, c: &Context) -> Result<PathBuf> {
    std::fs::create_dir_all(context_dir())?;
    let p = context_path(name);
    let mut json = serde_json::to_string_pretty(c)?;
    json.push('\n');
    std::fs::write(&p, json).with_context(|| format!("could not write {}", p.display()))?;
    Ok(p)
}

fn select(name: &str) -> Result<()> {
    std::fs::create_dir_all(config_dir())?;
    std::fs::write(selected_file(), name)?;
    Ok(())
}

fn show(name: &str, c: &Context, path: &Path) {
    let mut out = format!("NATS Configuration Context \"{name}\"\n\n");
    let mut row = |label: &str, v: &str| {
        if !v.is_empty() {
            out.push_str(&format!("{label:>17}: {v}\n"));
        }
    };
    row("Description", &c.description);
    let url = if c.url.is_empty() {
        "nats://127.0.0.1:4222"
    } else {
        &c.url
    };
    row("Server URLs", url);
    row("Username", &c.user);
    row(
        "Password",
        if c.password.is_empty() {
            ""
        } else {
            "*********"
        },
    );
    row("Token", if c.token.is_empty() { "" } else { "*********" });
    row("Credentials", &c.creds);
    row("NKey", &c.nkey);
    row("Certificate", &c.cert);
    row("Key", &c.key);
    row("CA", &c.ca);
    row("Inbox Prefix", &c.inbox_prefix);
    row("JS API Prefix", &c.jetstream_api_prefix);
    row("JS Event Prefix", &c.jetstream_event_prefix);
    row("JS Domain", &c.jetstream_domain);
    row("Path", &path.display().to_string());
    println!("{out}");
}

fn list_names() -> Vec<String> {
    let mut names: Vec<String> = std::fs::read_dir(context_dir())
        .map(|rd| {
            rd.filter_map(|e| e.ok())
                .filter_map(|e| {
                    let n = e.file_name().to_string_lossy().into_owned();
                    n.strip_suffix(".json").map(str::to_string)
                })
                .collect()
        })
        .unwrap_or_default();
    names.sort();
    names
}

fn confirm(question: &str) -> bool {
    if !std::io::stdin().is_terminal() {
        return false;
    }
    print!("? {question} (y/N) ");
    let _ = std::io::stdout().flush();
    let mut line = String::new();
    let _ = std::io::stdin().lock().read_line(&mut line);
    matches!(line.trim(), "y" | "Y" | "yes")
}

pub async fn run(cmd: Cmd, g: &Global) -> Result<()> {
    match cmd {
        Cmd::Save {
            name,
            description,
            select: sel,
        } => {
            valid_name(&name)?;
            let p = context_path(&name);
            let mut c = if p.exists() {
                read_file(&p)?
            } else {
                Context::default()
            };
            overlay(&mut c, g);
            if let Some(d) = description {
                c.description = d;
            }
            let path = write(&name, &c)?;
            if sel {
                select(&name)?;
            }
            show(&name, &c, &path);
        }
        Cmd::Ls => {
            let names = list_names();
            if names.is_empty() {
                println!("No known contexts");
                return Ok(());
            }
            let current = selected();
            println!("Known contexts:\n");
            for n in names {
                let c = read_file(&context_path(&n)).unwrap_or_default();
                let mark = if current.as_deref() == Some(n.as_str()) {
                    "*"
                } else {
                    ""
                };
                println!("   {:<20}{}", format!("{n}{mark}"), c.description);
            }
            println!();
        }
        Cmd::Select { name } => match name {
            Some(n) => {
                load(&n)?;
                select(&n)?;
                logf!("Selected context \"{n}\"");
            }
            None => match selected() {
                Some(n) => println!("{n}"),
                None => bail!("no context selected"),
            },
        },
        Cmd::Info {
            name,
            json,
            connect,
        } => {
            let name = name
                .or_else(|| g.context.clone())
                .or_else(selected)
                .ok_or_else(|| anyhow!("no context selected"))?;
            let (name, c, path) = load(&name)?;
            if json {
                println!("{}", serde_json::to_string_pretty(&c)?);
            } else {
                show(&name, &c, &path);
            }
            if connect {
                let mut g2 = g.clone();
                g2.context = Some(path.display().to_string());
                let client = crate::conn::connect(&g2).await?;
                client.close().await;
            }
        }
        Cmd::Rm { name, force } => {
            valid_name(&name)?;
            if selected().as_deref() == Some(name.as_str()) {
                bail!("cannot remove the current active context");
            }
            let p = context_path(&name);
            if !p.exists() {
                bail!("unknown context {name:?}");
            }
            if !force && !confirm(&format!("Really delete context \"{name}\"")) {
                return Ok(());
            }
            std::fs::remove_file(&p)?;
        }
        Cmd::Edit { name } => {
            let (_, _, path) = load(&name)?;
            let editor = std::env::var("EDITOR")
                .ok()
                .filter(|e| !e.is_empty())
                .ok_or_else(|| anyhow!("set EDITOR environment variable to your chosen editor"))?;
            let status = std::process::Command::new(editor).arg(&path).status()?;
            if !status.success() {
                bail!("editor failed: {status}");
            }
            read_file(&path)?;
        }
        Cmd::Copy {
            source,
            destination,
        } => {
            let (_, c, _) = load(&source)?;
            valid_name(&destination)?;
            if context_path(&destination).exists() {
                bail!("context {destination:?} already exists");
            }
            let p = write(&destination, &c)?;
            show(&destination, &c, &p);
        }
        Cmd::Validate { name } => {
            let names = match name {
                Some(n) => vec![n],
                None => list_names(),
            };
            for n in names {
                match load(&n) {
                    Ok((_, c, _)) => {
                        let mut errs = vec![];
                        for (label, f) in [
                            ("creds", &c.creds),
                            ("nkey", &c.nkey),
                            ("cert", &c.cert),
                            ("key", &c.key),
                            ("ca", &c.ca),
                        ] {
                            if !f.is_empty() && !Path::new(f).exists() {
                                errs.push(format!("{label} file {f} does not exist"));
                            }
                        }
                        if errs.is_empty() {
                            println!("{n}: OK");
                        } else {
                            println!("{n}: {}", errs.join(", "));
                        }
                    }
                    Err(e) => println!("{n}: {e}"),
                }
            }
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn context_json_keys_in_reference_order() {
        let c = Context {
            url: "nats://a:1".into(),
            ..Default::default()
        };
        let j = serde_json::to_string(&c).unwrap();
        assert!(j.starts_with(r#"{"description":"","url":"nats://a:1","token":"""#));
        assert!(j.ends_with(r#""inbox_prefix":""}"#));
        let back: Context = serde_json::from_str(r#"{"url":"x","user_jwt":"ignored"}"#).unwrap();
        assert_eq!(back.url, "x");
        assert!(valid_name("../x").is_err());
        assert!(valid_name("ok-name").is_ok());
    }
}

//! The `bmat` command a job runs: parses its arguments, asks the agent over
//! `$BMAT_SOCKET`, prints the answer. Exit status 0 on success, 1 when the
//! agent refuses, 2 on a usage error.

use std::ffi::OsString;
use std::io::{BufRead, BufReader, Read, Write};
use std::os::unix::net::UnixStream;

use super::proto::{Answer, Request};

const USAGE: &str = "usage:
  bmat store get NAME
  bmat store put [-s] NAME [VALUE]     (VALUE from stdin when omitted; -s: secret)
  bmat process start NAME COMMAND [ARG...]
  bmat factory name|id";

/// Runs `bmat` with `args` (without `argv[0]`); returns the exit status.
pub fn main(args: &[OsString]) -> i32 {
    let args: Vec<String> = args.iter().map(|a| a.to_string_lossy().into_owned()).collect();
    let req = match parse(&args) {
        Ok(r) => r,
        Err(e) => {
            eprintln!("bmat: {e}\n{USAGE}");
            return 2;
        }
    };
    match ask(&req) {
        Ok(Answer::Ok(out)) => {
            if let Some(out) = out {
                println!("{out}");
            }
            0
        }
        Ok(Answer::Err(e)) => {
            eprintln!("bmat: {e}");
            1
        }
        Err(e) => {
            eprintln!("bmat: {e}");
            1
        }
    }
}

/// The request the arguments ask for, or what is wrong with them.
pub fn parse(args: &[String]) -> Result<Request, String> {
    let words: Vec<&str> = args.iter().map(String::as_str).collect();
    match words.as_slice() {
        ["store", "get", name] => Ok(Request::StoreGet { name: name.to_string() }),
        ["store", "put", rest @ ..] => {
            let (secret, rest) = match rest {
                ["-s", rest @ ..] => (true, rest),
                _ => (false, rest),
            };
            let (name, value) = match rest {
                [name, value] => (name.to_string(), value.to_string()),
                [name] => {
                    let mut v = String::new();
                    std::io::stdin().read_to_string(&mut v).map_err(|e| format!("cannot read the value: {e}"))?;
                    (name.to_string(), v.strip_suffix('\n').unwrap_or(&v).to_string())
                }
                _ => return Err("store put takes a NAME and a VALUE".into()),
            };
            Ok(Request::StorePut { name, value, secret })
        }
        ["process", "start", name, cmd @ ..] if !cmd.is_empty() => {
            let cwd = std::env::current_dir().map_err(|e| format!("no working directory: {e}"))?;
            Ok(Request::ProcessStart {
                name: name.to_string(),
                argv: cmd.iter().map(|s| s.to_string()).collect(),
                cwd: cwd.display().to_string(),
                env: std::env::vars().collect(),
            })
        }
        ["factory", "name"] => Ok(Request::FactoryName),
        ["factory", "id"] => Ok(Request::FactoryId),
        [] => Err("no command".into()),
        _ => Err(format!("unknown command: {}", words.join(" "))),
    }
}

fn ask(req: &Request) -> Result<Answer, String> {
    let path = std::env::var(super::SOCKET_ENV)
        .map_err(|_| format!("${} is not set: bmat works only inside a bm job", super::SOCKET_ENV))?;
    let mut s = UnixStream::connect(&path).map_err(|e| format!("cannot reach the agent at {path}: {e}"))?;
    let mut line = serde_json::to_string(req).map_err(|e| e.to_string())?;
    line.push('\n');
    s.write_all(line.as_bytes()).map_err(|e| format!("cannot talk to the agent: {e}"))?;
    let mut answer = String::new();
    BufReader::new(s).read_line(&mut answer).map_err(|e| format!("no answer from the agent: {e}"))?;
    serde_json::from_str(&answer).map_err(|e| format!("unreadable answer from the agent: {e}"))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn p(s: &str) -> Result<Request, String> {
        parse(&s.split_whitespace().map(String::from).collect::<Vec<_>>())
    }

    #[test]
    fn the_commands_parse() {
        assert_eq!(p("store get k"), Ok(Request::StoreGet { name: "k".into() }));
        assert_eq!(p("store put k v"), Ok(Request::StorePut { name: "k".into(), value: "v".into(), secret: false }));
        assert_eq!(p("store put -s k v"), Ok(Request::StorePut { name: "k".into(), value: "v".into(), secret: true }));
        assert_eq!(p("factory name"), Ok(Request::FactoryName));
        assert_eq!(p("factory id"), Ok(Request::FactoryId));
        assert!(
            matches!(p("process start web python3 -m http.server"), Ok(Request::ProcessStart { name, argv, .. }) if name == "web" && argv.len() == 3)
        );
    }

    #[test]
    fn bad_commands_say_what_is_wrong() {
        assert_eq!(p(""), Err("no command".into()));
        assert_eq!(p("store frob k"), Err("unknown command: store frob k".into()));
        assert!(p("process start web").unwrap_err().contains("unknown command"));
        assert_eq!(p("store put a b c"), Err("store put takes a NAME and a VALUE".into()));
    }
}

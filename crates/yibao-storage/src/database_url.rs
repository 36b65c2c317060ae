//! The database URL: its scheme picks the backend, and it may hold a password, so its `Debug` and
//! `Display` hide everything after the scheme's user.

use std::fmt;

/// `sqlite://PATH` (a file, created when missing; `sqlite::memory:` for tests) or
/// `postgres://…` / `postgresql://…`. Any other scheme is refused, never a silent SQLite file.
#[derive(Clone, PartialEq, Eq)]
pub enum DatabaseUrl {
    Sqlite(String),
    Postgres(String),
}

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum DatabaseUrlError {
    #[error("数据库地址为空")]
    Empty,
    #[error("不支持的数据库地址类型“{0}”：只支持 sqlite:// 和 postgres://")]
    UnknownScheme(String),
    #[error("SQLite 数据库地址缺少文件路径，例如 sqlite://yibao.db")]
    MissingPath,
}

impl DatabaseUrl {
    pub fn parse(url: &str) -> Result<Self, DatabaseUrlError> {
        let url = url.trim();
        if url.is_empty() {
            return Err(DatabaseUrlError::Empty);
        }
        let scheme = url.split(':').next().unwrap_or_default();
        match scheme {
            "postgres" | "postgresql" if url.contains("://") => {
                Ok(DatabaseUrl::Postgres(url.to_owned()))
            }
            "sqlite" => {
                let rest = url.trim_start_matches("sqlite:").trim_start_matches("//");
                if rest.is_empty() {
                    return Err(DatabaseUrlError::MissingPath);
                }
                Ok(DatabaseUrl::Sqlite(url.to_owned()))
            }
            _ => Err(DatabaseUrlError::UnknownScheme(
                scheme.chars().take(20).collect(),
            )),
        }
    }

    /// The file a `sqlite://PATH` URL names (without any `?options`); `None` for PostgreSQL and
    /// for an in-memory SQLite database.
    pub fn sqlite_file(&self) -> Option<std::path::PathBuf> {
        match self {
            DatabaseUrl::Postgres(_) => None,
            DatabaseUrl::Sqlite(u) => {
                let rest = u.trim_start_matches("sqlite:").trim_start_matches("//");
                let path = rest.split('?').next().unwrap_or_default();
                (!path.is_empty() && !path.contains(":memory:")).then(|| path.into())
            }
        }
    }

    /// The URL with any password, to hand to the driver. Never log this.
    pub fn expose(&self) -> &str {
        match self {
            DatabaseUrl::Sqlite(u) | DatabaseUrl::Postgres(u) => u,
        }
    }

    /// Whether the URL carries a password (`user:password@`), which belongs in the environment or
    /// the configuration file, not on a command line.
    pub fn has_password(&self) -> bool {
        match self {
            DatabaseUrl::Sqlite(_) => false,
            DatabaseUrl::Postgres(u) => u
                .split_once("://")
                .and_then(|(_, rest)| rest.split_once('@'))
                .is_some_and(|(userinfo, _)| userinfo.contains(':')),
        }
    }

    /// Safe to print: the password, query and path after the host are cut.
    pub fn redacted(&self) -> String {
        match self {
            DatabaseUrl::Sqlite(u) => u.clone(),
            DatabaseUrl::Postgres(u) => {
                let (scheme, rest) = u.split_once("://").unwrap_or(("postgres", ""));
                let host_part = rest.rsplit_once('@').map_or(rest, |(_, h)| h);
                let user = rest
                    .rsplit_once('@')
                    .map(|(userinfo, _)| userinfo.split(':').next().unwrap_or_default());
                let host_and_db = host_part.split('?').next().unwrap_or_default();
                match user {
                    Some(user) if self.has_password() => {
                        format!("{scheme}://{user}:***@{host_and_db}")
                    }
                    Some(user) => format!("{scheme}://{user}@{host_and_db}"),
                    None => format!("{scheme}://{host_and_db}"),
                }
            }
        }
    }
}

impl fmt::Debug for DatabaseUrl {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "DatabaseUrl({})", self.redacted())
    }
}

impl fmt::Display for DatabaseUrl {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.redacted())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn scheme_picks_backend() {
        assert!(matches!(
            DatabaseUrl::parse("sqlite://yibao.db"),
            Ok(DatabaseUrl::Sqlite(_))
        ));
        assert!(matches!(
            DatabaseUrl::parse("sqlite::memory:"),
            Ok(DatabaseUrl::Sqlite(_))
        ));
        assert!(matches!(
            DatabaseUrl::parse("postgres://u@127.0.0.1/test"),
            Ok(DatabaseUrl::Postgres(_))
        ));
        assert!(matches!(
            DatabaseUrl::parse("postgresql://127.0.0.1/test"),
            Ok(DatabaseUrl::Postgres(_))
        ));
        assert_eq!(
            DatabaseUrl::parse("mysql://x"),
            Err(DatabaseUrlError::UnknownScheme("mysql".into()))
        );
        assert_eq!(
            DatabaseUrl::parse("yibao.db"),
            Err(DatabaseUrlError::UnknownScheme("yibao.db".into()))
        );
        assert_eq!(
            DatabaseUrl::parse("sqlite://"),
            Err(DatabaseUrlError::MissingPath)
        );
        assert_eq!(DatabaseUrl::parse(" "), Err(DatabaseUrlError::Empty));
    }

    #[test]
    fn sqlite_file_is_the_path() {
        let file = |u: &str| DatabaseUrl::parse(u).unwrap().sqlite_file();
        assert_eq!(file("sqlite://yibao.db"), Some("yibao.db".into()));
        assert_eq!(
            file("sqlite:///var/lib/yibao/y.db?mode=rwc"),
            Some("/var/lib/yibao/y.db".into())
        );
        assert_eq!(file("sqlite::memory:"), None);
        assert_eq!(file("postgres://u@127.0.0.1/test"), None);
    }

    #[test]
    fn password_never_shows() {
        let url =
            DatabaseUrl::parse("postgres://yibao:s3cr3t@db.internal:5432/yibao?sslmode=require")
                .unwrap();
        assert!(url.has_password());
        for shown in [format!("{url:?}"), url.to_string(), url.redacted()] {
            assert!(!shown.contains("s3cr3t"), "{shown}");
            assert!(shown.contains("db.internal:5432/yibao"), "{shown}");
        }
        let plain = DatabaseUrl::parse("postgres://postgres@127.0.0.1/test").unwrap();
        assert!(!plain.has_password());
        assert_eq!(plain.to_string(), "postgres://postgres@127.0.0.1/test");
    }
}

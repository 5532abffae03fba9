//! Path patterns with `:param` and `*rest` segments, and the table that matches a request's
//! method and path against them.
//!
//! Matching is [`matchit`]'s radix tree (static segments before parameters before a
//! catch-all, with backtracking); the patterns users write keep the `:param`/`*rest` syntax
//! and are translated (`/chat/:room` is matchit's `/chat/{room}`). A request path is
//! matched as sent, its captures are percent-decoded; a trailing `/` is ignored.
//!
//! ```
//! use armature_realtime::router::{Router, Match};
//! use http::Method;
//!
//! let mut router = Router::new();
//! router.insert(Method::GET, "/ws/chat/:room", "chat").unwrap();
//! router.insert(Method::GET, "/ws/chat/lobby", "lobby").unwrap();
//!
//! let Match::Found(route, params) = router.find(&Method::GET, "/ws/chat/rust%20fans") else {
//!     panic!("no match")
//! };
//! assert_eq!(*route, "chat");
//! assert_eq!(params.get("room"), Some("rust fans"));
//! // A static segment wins over a parameter.
//! assert!(matches!(router.find(&Method::GET, "/ws/chat/lobby"), Match::Found(&"lobby", _)));
//! ```

use std::collections::HashMap;
use std::fmt;

use http::Method;
use percent_encoding::percent_decode_str;

use crate::Error;

/// One segment of a [`PathPattern`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Segment {
    /// A literal segment, matched exactly.
    Static(String),
    /// `:name`: any one non-empty segment, captured (percent-decoded) under `name`.
    Param(String),
    /// `*name`, last only: the rest of the path (possibly empty), captured under `name`.
    Rest(String),
}

/// A parsed route path such as `/chat/:room` or `/static/*file`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PathPattern {
    segments: Vec<Segment>,
}

impl PathPattern {
    /// Parses `path`. It must start with `/`; `:name` and `*name` need a name made of
    /// letters, digits and `_`; a `*name` segment must be the last; names are unique.
    ///
    /// # Errors
    /// [`Error::Validation`] naming the rule `path` breaks.
    pub fn parse(path: &str) -> Result<Self, Error> {
        let Some(rest) = path.strip_prefix('/') else {
            return Err(Error::Validation(format!(
                "route path `{path}` must start with `/`"
            )));
        };
        let mut segments = Vec::new();
        let parts: Vec<&str> = if rest.is_empty() {
            Vec::new()
        } else {
            rest.trim_end_matches('/').split('/').collect()
        };
        for (i, part) in parts.iter().enumerate() {
            let segment = if let Some(name) = part.strip_prefix(':') {
                Segment::Param(valid_name(path, name)?)
            } else if let Some(name) = part.strip_prefix('*') {
                if i + 1 != parts.len() {
                    return Err(Error::Validation(format!(
                        "`*{name}` must be the last segment of `{path}`"
                    )));
                }
                Segment::Rest(valid_name(path, name)?)
            } else if part.is_empty() {
                return Err(Error::Validation(format!(
                    "route path `{path}` has an empty segment"
                )));
            } else {
                Segment::Static((*part).to_owned())
            };
            if let Some(name) = segment_name(&segment)
                && segments
                    .iter()
                    .any(|s: &Segment| segment_name(s) == Some(name))
            {
                return Err(Error::Validation(format!(
                    "parameter `{name}` appears twice in `{path}`"
                )));
            }
            segments.push(segment);
        }
        Ok(Self { segments })
    }

    /// The segments of this pattern.
    pub fn segments(&self) -> &[Segment] {
        &self.segments
    }

    /// The names of the `:param` and `*rest` captures, in order.
    pub fn param_names(&self) -> impl Iterator<Item = &str> {
        self.segments.iter().filter_map(segment_name)
    }

    /// True when both patterns match exactly the same paths (parameter names aside).
    pub fn same_shape(&self, other: &PathPattern) -> bool {
        self.segments.len() == other.segments.len()
            && self
                .segments
                .iter()
                .zip(&other.segments)
                .all(|pair| match pair {
                    (Segment::Static(a), Segment::Static(b)) => a == b,
                    (Segment::Param(_), Segment::Param(_))
                    | (Segment::Rest(_), Segment::Rest(_)) => true,
                    _ => false,
                })
    }

    /// The pattern in matchit's syntax, parameters named by position (`/chat/{p0}`), so
    /// that two patterns of the same shape are one matchit route whatever their names.
    fn matchit_path(&self) -> String {
        let mut out = String::new();
        for (i, segment) in self.segments.iter().enumerate() {
            out.push('/');
            match segment {
                Segment::Static(s) => out.push_str(&s.replace('{', "{{").replace('}', "}}")),
                Segment::Param(_) => out.push_str(&format!("{{p{i}}}")),
                Segment::Rest(_) => out.push_str(&format!("{{*p{i}}}")),
            }
        }
        if out.is_empty() {
            out.push('/');
        }
        out
    }

    /// The same pattern without its trailing `*rest`: a rest may be empty, and matchit's
    /// catch-all needs at least one character, so both are registered.
    fn without_rest(&self) -> Option<PathPattern> {
        match self.segments.last() {
            Some(Segment::Rest(_)) => Some(PathPattern {
                segments: self.segments[..self.segments.len() - 1].to_vec(),
            }),
            _ => None,
        }
    }
}

impl fmt::Display for PathPattern {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if self.segments.is_empty() {
            return f.write_str("/");
        }
        for segment in &self.segments {
            match segment {
                Segment::Static(s) => write!(f, "/{s}")?,
                Segment::Param(s) => write!(f, "/:{s}")?,
                Segment::Rest(s) => write!(f, "/*{s}")?,
            }
        }
        Ok(())
    }
}

fn segment_name(segment: &Segment) -> Option<&str> {
    match segment {
        Segment::Static(_) => None,
        Segment::Param(name) | Segment::Rest(name) => Some(name),
    }
}

fn valid_name(path: &str, name: &str) -> Result<String, Error> {
    if name.is_empty() || !name.chars().all(|c| c.is_ascii_alphanumeric() || c == '_') {
        return Err(Error::Validation(format!(
            "bad parameter name `{name}` in `{path}`"
        )));
    }
    Ok(name.to_owned())
}

fn decode(segment: &str) -> String {
    percent_decode_str(segment).decode_utf8_lossy().into_owned()
}

/// Joins a controller prefix and a route path: `("/ws", "/chat/:room")` gives
/// `/ws/chat/:room`; an empty or `/` prefix leaves the path as it is.
pub fn join_paths(prefix: &str, path: &str) -> String {
    let prefix = prefix.trim_end_matches('/');
    let path = path.trim_start_matches('/');
    match (prefix.is_empty(), path.is_empty()) {
        (true, true) => "/".to_owned(),
        (true, false) => format!("/{path}"),
        (false, true) => prefix.to_owned(),
        (false, false) => format!("{prefix}/{path}"),
    }
}

/// Path parameters captured by a match, in the order of the pattern.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Params {
    pairs: Vec<(String, String)>,
}

impl Params {
    /// The decoded value captured under `name`.
    pub fn get(&self, name: &str) -> Option<&str> {
        self.pairs
            .iter()
            .find(|(n, _)| n == name)
            .map(|(_, v)| v.as_str())
    }

    /// All captures as `(name, value)`.
    pub fn iter(&self) -> impl Iterator<Item = (&str, &str)> {
        self.pairs.iter().map(|(n, v)| (n.as_str(), v.as_str()))
    }

    fn push(&mut self, name: String, value: String) {
        self.pairs.push((name, value));
    }
}

/// The outcome of [`Router::find`].
#[derive(Debug)]
pub enum Match<'a, T> {
    /// A route matched: its value and the captured parameters.
    Found(&'a T, Params),
    /// The path matches a route, but not for this method (answer `405`).
    MethodNotAllowed,
    /// No route matches the path (answer `404`).
    NotFound,
}

/// A table of `(method, pattern) → T`, matched by [`matchit`].
#[derive(Debug, Clone)]
pub struct Router<T> {
    /// Every route, in insertion order.
    routes: Vec<(Method, PathPattern, T)>,
    /// matchit path → index into `shapes`.
    tree: matchit::Router<usize>,
    /// matchit path → index into `shapes` (to find a shape again when inserting).
    shape_of: HashMap<String, usize>,
    /// Per registered shape, its routes by method.
    shapes: Vec<Vec<ShapeRoute>>,
}

/// A route registered under a shape.
#[derive(Debug, Clone)]
struct ShapeRoute {
    method: Method,
    route: usize,
    /// Registered for the empty rest of a `*rest` pattern: an exact route wins over it.
    empty_rest: bool,
}

impl<T> Default for Router<T> {
    fn default() -> Self {
        Self {
            routes: Vec::new(),
            tree: matchit::Router::new(),
            shape_of: HashMap::new(),
            shapes: Vec::new(),
        }
    }
}

impl<T> Router<T> {
    /// An empty table.
    pub fn new() -> Self {
        Self::default()
    }

    /// Adds a route.
    ///
    /// # Errors
    /// [`Error::Validation`] when `path` is malformed (see [`PathPattern::parse`]), a route
    /// with the same method and the same shape is already in the table, or matchit refuses
    /// the pattern next to the others (its error says which route it conflicts with).
    pub fn insert(&mut self, method: Method, path: &str, value: T) -> Result<(), Error> {
        let pattern = PathPattern::parse(path)?;
        if let Some((_, existing, _)) = self
            .routes
            .iter()
            .find(|(m, p, _)| *m == method && p.same_shape(&pattern))
        {
            return Err(Error::Validation(format!(
                "duplicate route: {method} {pattern} conflicts with {method} {existing}"
            )));
        }
        let route = self.routes.len();
        let mut paths = vec![(pattern.matchit_path(), false)];
        if let Some(bare) = pattern.without_rest() {
            paths.push((bare.matchit_path(), true));
        }
        for (matchit_path, empty_rest) in paths {
            let shape = match self.shape_of.get(&matchit_path) {
                Some(shape) => *shape,
                None => {
                    let shape = self.shapes.len();
                    self.tree
                        .insert(matchit_path.clone(), shape)
                        .map_err(|e| Error::Validation(format!("route {method} {pattern}: {e}")))?;
                    self.shape_of.insert(matchit_path, shape);
                    self.shapes.push(Vec::new());
                    shape
                }
            };
            let Some(entries) = self.shapes.get_mut(shape) else {
                continue;
            };
            let entry = ShapeRoute {
                method: method.clone(),
                route,
                empty_rest,
            };
            match entries.iter_mut().find(|e| e.method == method) {
                // An exact route replaces an empty rest; an empty rest never replaces.
                Some(existing) if existing.empty_rest && !empty_rest => *existing = entry,
                Some(_) => {}
                None => entries.push(entry),
            }
        }
        self.routes.push((method, pattern, value));
        Ok(())
    }

    /// The number of routes.
    pub fn len(&self) -> usize {
        self.routes.len()
    }

    /// True when the table holds no route.
    pub fn is_empty(&self) -> bool {
        self.routes.is_empty()
    }

    /// The routes, as `(method, pattern, value)`, in insertion order.
    pub fn routes(&self) -> impl Iterator<Item = (&Method, &PathPattern, &T)> {
        self.routes.iter().map(|(m, p, v)| (m, p, v))
    }

    /// Finds the most specific route for `method` and `path` (the path of a request URI,
    /// without its query). A `HEAD` request falls back to a `GET` route. An empty `:param`
    /// (`/chat//x`) matches nothing.
    pub fn find(&self, method: &Method, path: &str) -> Match<'_, T> {
        let trimmed = match path.strip_suffix('/') {
            Some(t) if !t.is_empty() => t,
            _ => path,
        };
        let Ok(found) = self.tree.at(trimmed) else {
            return Match::NotFound;
        };
        let Some(methods) = self.shapes.get(*found.value) else {
            return Match::NotFound;
        };
        let pick = |wanted: &Method| {
            methods
                .iter()
                .find(|e| e.method == *wanted)
                .and_then(|e| self.routes.get(e.route))
        };
        let route =
            pick(method).or_else(|| (*method == Method::HEAD).then(|| pick(&Method::GET))?);
        let Some((_, pattern, value)) = route else {
            return Match::MethodNotAllowed;
        };
        let mut params = Params::default();
        let mut raw = found.params.iter().map(|(_, v)| v);
        for segment in pattern.segments() {
            match segment {
                Segment::Static(_) => {}
                Segment::Param(name) => {
                    let value = raw.next().unwrap_or("");
                    if value.is_empty() {
                        return Match::NotFound;
                    }
                    params.push(name.clone(), decode(value));
                }
                Segment::Rest(name) => {
                    let value = raw.next().unwrap_or("");
                    let decoded: Vec<String> = value.split('/').map(decode).collect();
                    params.push(name.clone(), decoded.join("/"));
                }
            }
        }
        Match::Found(value, params)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn found<'a, T>(m: Match<'a, T>) -> (&'a T, Params) {
        match m {
            Match::Found(v, p) => (v, p),
            Match::MethodNotAllowed => panic!("expected a match, got 405"),
            Match::NotFound => panic!("expected a match, got 404"),
        }
    }

    #[test]
    fn parses_and_displays() {
        let p = PathPattern::parse("/chat/:room/*rest").unwrap();
        assert_eq!(
            p.segments(),
            &[
                Segment::Static("chat".into()),
                Segment::Param("room".into()),
                Segment::Rest("rest".into())
            ]
        );
        assert_eq!(p.to_string(), "/chat/:room/*rest");
        assert_eq!(PathPattern::parse("/").unwrap().to_string(), "/");
        assert_eq!(PathPattern::parse("/a/").unwrap().to_string(), "/a");
    }

    #[test]
    fn rejects_malformed_paths() {
        for bad in ["chat", "/a//b", "/:", "/:a-b", "/*rest/more", "/:x/:x", ""] {
            let err = PathPattern::parse(bad).unwrap_err();
            assert!(err.is_validation(), "{bad}: {err}");
        }
    }

    #[test]
    fn joins_prefix_and_path() {
        assert_eq!(join_paths("/ws", "/chat/:room"), "/ws/chat/:room");
        assert_eq!(join_paths("/ws/", "chat"), "/ws/chat");
        assert_eq!(join_paths("", "/x"), "/x");
        assert_eq!(join_paths("/", "/"), "/");
        assert_eq!(join_paths("/events", "/"), "/events");
    }

    #[test]
    fn params_are_captured_and_decoded() {
        let mut r = Router::new();
        r.insert(Method::GET, "/chat/:room/:user", 1).unwrap();
        let (v, p) = found(r.find(&Method::GET, "/chat/r%C3%A9sum%C3%A9/bob/"));
        assert_eq!(*v, 1);
        assert_eq!(p.get("room"), Some("résumé"));
        assert_eq!(p.get("user"), Some("bob"));
        assert!(matches!(r.find(&Method::GET, "/chat/x"), Match::NotFound));
        assert!(matches!(
            r.find(&Method::GET, "/chat//bob"),
            Match::NotFound
        ));
        assert!(matches!(
            r.find(&Method::GET, "/chat/a/b/c"),
            Match::NotFound
        ));
    }

    #[test]
    fn static_beats_param_beats_rest() {
        let mut r = Router::new();
        r.insert(Method::GET, "/*path", "rest").unwrap();
        r.insert(Method::GET, "/chat/:room", "param").unwrap();
        r.insert(Method::GET, "/chat/lobby", "static").unwrap();
        assert_eq!(*found(r.find(&Method::GET, "/chat/lobby")).0, "static");
        assert_eq!(*found(r.find(&Method::GET, "/chat/other")).0, "param");
        let (v, p) = found(r.find(&Method::GET, "/static/app.js"));
        assert_eq!(*v, "rest");
        assert_eq!(p.get("path"), Some("static/app.js"));
        let (_, p) = found(r.find(&Method::GET, "/"));
        assert_eq!(p.get("path"), Some(""));
    }

    #[test]
    fn duplicates_are_refused_whatever_the_param_names() {
        let mut r = Router::new();
        r.insert(Method::GET, "/chat/:room", 1).unwrap();
        let err = r.insert(Method::GET, "/chat/:name", 2).unwrap_err();
        assert!(err.to_string().contains("duplicate route"), "{err}");
        r.insert(Method::POST, "/chat/:name", 3).unwrap();
        assert_eq!(r.len(), 2);
    }

    #[test]
    fn matching_backtracks_and_keeps_literal_braces() {
        let mut r = Router::new();
        r.insert(Method::GET, "/*path", "rest").unwrap();
        r.insert(Method::GET, "/chat/:room", "param").unwrap();
        r.insert(Method::GET, "/a{b}", "braces").unwrap();
        // `/chat/x/y` is too long for `/chat/:room`: the catch-all takes it.
        let (v, p) = found(r.find(&Method::GET, "/chat/x/y"));
        assert_eq!(*v, "rest");
        assert_eq!(p.get("path"), Some("chat/x/y"));
        assert_eq!(*found(r.find(&Method::GET, "/a{b}")).0, "braces");
        // An exact route wins over the empty rest of a catch-all.
        let mut r = Router::new();
        r.insert(Method::GET, "/static/*file", "files").unwrap();
        r.insert(Method::GET, "/static", "index").unwrap();
        assert_eq!(*found(r.find(&Method::GET, "/static")).0, "index");
        let (v, p) = found(r.find(&Method::GET, "/static/a%20b/c.js"));
        assert_eq!(*v, "files");
        assert_eq!(p.get("file"), Some("a b/c.js"));
    }

    #[test]
    fn method_not_allowed_and_head() {
        let mut r = Router::new();
        r.insert(Method::GET, "/page", 1).unwrap();
        assert!(matches!(
            r.find(&Method::POST, "/page"),
            Match::MethodNotAllowed
        ));
        assert!(matches!(
            r.find(&Method::HEAD, "/page"),
            Match::Found(&1, _)
        ));
    }
}

//! Reading the decorators' own attributes: `#[controller("/prefix")]`,
//! `#[module(providers: [..], controllers: [..], imports: [..])]`, `#[websocket("/path")]`,
//! `#[sse("/path")]`, and `#[query]` / `#[header]` / `#[inject]` on arguments and fields.

use proc_macro2::{Span, TokenStream};
use syn::parse::{Parse, ParseStream};
use syn::punctuated::Punctuated;
use syn::spanned::Spanned;
use syn::{Attribute, Ident, LitStr, Path, Token, bracketed};

use crate::ast::RouteKind;

/// Parses the arguments of an attribute that takes exactly one path string.
pub(crate) fn path_literal(args: TokenStream, what: &str, call_site: Span) -> syn::Result<LitStr> {
    if args.is_empty() {
        return Err(syn::Error::new(
            call_site,
            format!("missing path: write `#[{what}(\"/path\")]`"),
        ));
    }
    syn::parse2::<LitStr>(args.clone()).map_err(|_| {
        syn::Error::new_spanned(
            args,
            format!("expected one path string, as in `#[{what}(\"/path\")]`"),
        )
    })
}

/// The lists of `#[module(..)]`.
#[derive(Default)]
pub(crate) struct ModuleArgs {
    pub(crate) providers: Vec<Path>,
    pub(crate) controllers: Vec<Path>,
    pub(crate) imports: Vec<Path>,
}

struct ModuleEntry {
    key: Ident,
    paths: Punctuated<Path, Token![,]>,
}

impl Parse for ModuleEntry {
    fn parse(input: ParseStream<'_>) -> syn::Result<Self> {
        let key: Ident = input.parse()?;
        input.parse::<Token![:]>()?;
        if !input.peek(syn::token::Bracket) {
            return Err(input.error(format!(
                "expected a list after `{key}:`, as in `{key}: [A, B]`"
            )));
        }
        let content;
        bracketed!(content in input);
        let paths = content.parse_terminated(Path::parse, Token![,])?;
        Ok(Self { key, paths })
    }
}

impl Parse for ModuleArgs {
    fn parse(input: ParseStream<'_>) -> syn::Result<Self> {
        let entries = input.parse_terminated(ModuleEntry::parse, Token![,])?;
        let mut args = ModuleArgs::default();
        let mut seen: Vec<String> = Vec::new();
        for entry in entries {
            let key = entry.key.to_string();
            if seen.contains(&key) {
                return Err(syn::Error::new(
                    entry.key.span(),
                    format!("`{key}` given twice"),
                ));
            }
            seen.push(key.clone());
            let list = match key.as_str() {
                "providers" => &mut args.providers,
                "controllers" => &mut args.controllers,
                "imports" => &mut args.imports,
                _ => {
                    return Err(syn::Error::new(
                        entry.key.span(),
                        format!(
                            "unknown module key `{key}`: expected `providers`, `controllers` or `imports`"
                        ),
                    ));
                }
            };
            list.extend(entry.paths);
        }
        Ok(args)
    }
}

/// Where a handler argument's value comes from, as its attribute says.
pub(crate) enum ArgAttr {
    /// `#[query]` or `#[query("key")]`.
    Query(Option<LitStr>, Span),
    /// `#[header]` or `#[header("name")]`.
    Header(Option<LitStr>, Span),
    /// `#[extract]`: the type implements `FromRequestHead`.
    Extract(Span),
}

/// Removes `#[query]` / `#[header]` from an argument's attributes and returns it.
pub(crate) fn take_arg_attr(attrs: &mut Vec<Attribute>) -> syn::Result<Option<ArgAttr>> {
    let mut found = None;
    let mut error: Option<syn::Error> = None;
    attrs.retain(|attr| {
        let name = if attr.path().is_ident("query") {
            "query"
        } else if attr.path().is_ident("header") {
            "header"
        } else if attr.path().is_ident("extract") {
            if found.is_some() {
                let e = syn::Error::new(attr.span(), "an argument takes one argument attribute");
                match &mut error {
                    Some(all) => all.combine(e),
                    None => error = Some(e),
                }
            } else {
                found = Some(ArgAttr::Extract(attr.span()));
            }
            return false;
        } else {
            return true;
        };
        let key = match &attr.meta {
            syn::Meta::Path(_) => Ok(None),
            syn::Meta::List(list) => syn::parse2::<LitStr>(list.tokens.clone())
                .map(Some)
                .map_err(|_| {
                    syn::Error::new_spanned(
                        &list.tokens,
                        format!("expected a name string, as in `#[{name}(\"name\")]`"),
                    )
                }),
            syn::Meta::NameValue(nv) => Err(syn::Error::new_spanned(
                nv,
                format!("write `#[{name}]` or `#[{name}(\"name\")]`"),
            )),
        };
        let parsed = key.and_then(|key| {
            if found.is_some() {
                return Err(syn::Error::new(
                    attr.span(),
                    "an argument takes at most one of `#[query]` and `#[header]`",
                ));
            }
            Ok(if name == "query" {
                ArgAttr::Query(key, attr.span())
            } else {
                ArgAttr::Header(key, attr.span())
            })
        });
        match parsed {
            Ok(arg) => found = Some(arg),
            Err(e) => match &mut error {
                Some(all) => all.combine(e),
                None => error = Some(e),
            },
        }
        false
    });
    match error {
        Some(e) => Err(e),
        None => Ok(found),
    }
}

/// A `#[websocket("/path")]` or `#[sse("/path")]` found on a method.
pub(crate) struct RouteAttr {
    pub(crate) kind: RouteKind,
    pub(crate) path: LitStr,
    /// The whole attribute, for error spans.
    pub(crate) tokens: TokenStream,
}

/// Removes the route attributes from a method's attributes and parses them.
pub(crate) fn take_route_attrs(attrs: &mut Vec<Attribute>) -> Vec<syn::Result<RouteAttr>> {
    let mut found = Vec::new();
    attrs.retain(|attr| {
        let (kind, name) = if attr.path().is_ident("websocket") {
            (RouteKind::WebSocket, "websocket")
        } else if attr.path().is_ident("sse") {
            (RouteKind::Sse, "sse")
        } else {
            return true;
        };
        let parsed = match &attr.meta {
            syn::Meta::List(list) if list.tokens.is_empty() => Err(syn::Error::new_spanned(
                attr,
                format!("missing path: write `#[{name}(\"/path\")]`"),
            )),
            syn::Meta::List(list) => path_literal(list.tokens.clone(), name, attr.span()),
            _ => Err(syn::Error::new_spanned(
                attr,
                format!("missing path: write `#[{name}(\"/path\")]`"),
            )),
        };
        found.push(parsed.map(|path| RouteAttr {
            kind,
            path,
            tokens: quote::ToTokens::to_token_stream(attr),
        }));
        false
    });
    found
}

/// Removes `#[inject]` / `#[inject(default)]` from a field; `Some(true)` for `default`.
pub(crate) fn take_inject_attr(attrs: &mut Vec<Attribute>) -> syn::Result<Option<bool>> {
    let mut result = Ok(None);
    attrs.retain(|attr| {
        if !attr.path().is_ident("inject") {
            return true;
        }
        result = match &attr.meta {
            syn::Meta::Path(_) => Ok(Some(false)),
            syn::Meta::List(list) if list.tokens.to_string() == "default" => Ok(Some(true)),
            other => Err(syn::Error::new_spanned(
                other,
                "write `#[inject]` (resolve from the container) or `#[inject(default)]` (use `Default::default()`)",
            )),
        };
        false
    });
    result
}

/// Removes `#[use_guards(A, B)]` from `attrs` and returns the guard types, in order.
pub(crate) fn take_guards(attrs: &mut Vec<Attribute>) -> syn::Result<Vec<syn::Type>> {
    let mut guards = Vec::new();
    let mut error: Option<syn::Error> = None;
    attrs.retain(|attr| {
        if !attr.path().is_ident("use_guards") {
            return true;
        }
        let parsed = attr.parse_args_with(
            syn::punctuated::Punctuated::<syn::Type, syn::Token![,]>::parse_terminated,
        );
        match parsed {
            Ok(list) if !list.is_empty() => guards.extend(list),
            _ => {
                let e = syn::Error::new_spanned(
                    attr,
                    "write the guard types: `#[use_guards(AuthGuard, ..)]`",
                );
                match &mut error {
                    Some(all) => all.combine(e),
                    None => error = Some(e),
                }
            }
        }
        false
    });
    match error {
        Some(e) => Err(e),
        None => Ok(guards),
    }
}

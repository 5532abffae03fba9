//! Our GraphQL bench server for `cargo xtask bench` (scenario `graphql-1k`):
//! `graphql_ours PORT`. See [`benches::peer::graphql`].

fn main() -> std::io::Result<()> {
    benches::peer::main_with("graphql_ours", benches::peer::graphql::serve_ours)
}

//! The frame of every page: the document, the header, the bar of pages, the left pane of
//! sections and the messages; and the pages that are nothing but the frame (login, refusals).

use maud::{DOCTYPE, Markup, html};

use ticketing_core::model::{Product, StatusLevel};
use ticketing_core::rules::Section;

use super::render::section_href;
use super::session::Flash;

/// The pages the bar under the header links to.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Tab {
    /// The Ticketing rules (the sections, with the left pane).
    Rules,
    /// Recent decisions.
    Activity,
    /// Tenants and their PSA accounts.
    Mapping,
    /// Whether the PSA and the sources are reached, the mapping and the rules on.
    Setup,
    /// Users and API tokens (admins only).
    Users,
}

impl Tab {
    const ALL: [Self; 5] = [Self::Setup, Self::Rules, Self::Activity, Self::Mapping, Self::Users];

    fn href(self) -> String {
        match self {
            Self::Rules => section_href(Section::General),
            Self::Activity => "/ui/activity".to_owned(),
            Self::Mapping => "/ui/mapping".to_owned(),
            Self::Setup => "/ui/setup".to_owned(),
            Self::Users => "/ui/users".to_owned(),
        }
    }

    fn text(self) -> &'static str {
        match self {
            Self::Rules => "Ticketing rules",
            Self::Activity => "Activity",
            Self::Mapping => "Mapping",
            Self::Setup => "Setup",
            Self::Users => "Users",
        }
    }

    fn id(self) -> &'static str {
        match self {
            Self::Rules => "tab-rules",
            Self::Activity => "tab-activity",
            Self::Mapping => "tab-mapping",
            Self::Setup => "tab-setup",
            Self::Users => "tab-users",
        }
    }
}

/// What every page's frame needs.
pub(crate) struct Frame<'a> {
    /// The page's title.
    pub(crate) title: &'a str,
    /// Which page of the bar under the header this is (None: login, refusals).
    pub(crate) tab: Option<Tab>,
    /// The current section (for the navigation), if any.
    pub(crate) current: Option<Section>,
    /// Sections with unsaved changes.
    pub(crate) dirty: &'a [Section],
    /// The session's CSRF token (None on the login page).
    pub(crate) csrf: Option<&'a str>,
    /// Messages to show once.
    pub(crate) flash: &'a [Flash],
    /// How many listed tenants are not mapped (the banner linking the Mapping page).
    pub(crate) unmapped: usize,
}

fn nav_link(frame: &Frame<'_>, s: Section, text: &str) -> Markup {
    html! {
        li {
            a href=(section_href(s)) aria-current=[(Some(s) == frame.current).then_some("page")] { (text) }
            @if frame.dirty.contains(&s) {
                " " span.dirty title="unsaved changes" { "(unsaved)" }
            }
        }
    }
}

/// The left pane: General, then each product with its sections, as the guide groups them.
fn nav(frame: &Frame<'_>) -> Markup {
    html! {
        nav id="nav" aria-label="Ticketing sections" {
            ul.tree {
                (nav_link(frame, Section::General, "General"))
                @for p in Product::ALL {
                    li.product {
                        span.product-name { (p.display_name()) }
                        ul {
                            (nav_link(frame, Section::Events(p), "Events"))
                            @if p.has_statuses() {
                                li {
                                    span.group-name { "Computer status" }
                                    ul {
                                        @for l in [StatusLevel::Critical, StatusLevel::Warning] {
                                            (nav_link(frame, Section::Statuses(p, l), &l.to_string()))
                                        }
                                    }
                                }
                            }
                        }
                    }
                }
            }
        }
    }
}

/// The banner while listed tenants are not mapped: their events are held until they are.
fn unmapped_banner(n: usize) -> Markup {
    html! {
        @if n > 0 {
            div.banner.warn role="status" id="unmapped-banner" {
                p {
                    strong {
                        @if n == 1 { "1 tenant is not mapped" } @else { (n) " tenants are not mapped" }
                    }
                    " to a PSA account: their events are held until it is."
                }
                p { a href="/ui/mapping" id="unmapped-link" { "Map them on the Mapping page" } }
            }
        }
    }
}

/// The bar under the header: Setup, Ticketing rules, Activity, Mapping.
fn tabs(frame: &Frame<'_>) -> Markup {
    let is_admin = crate::gate::current().is_some_and(|p| p.may(crate::access::Role::Admin));
    html! {
        nav.tabs id="tabs" aria-label="Pages" {
            @for t in Tab::ALL.into_iter().filter(|t| *t != Tab::Users || is_admin) {
                a href=(t.href()) id=(t.id()) aria-current=[(Some(t) == frame.tab).then_some("page")] { (t.text()) }
            }
        }
    }
}

/// Wraps a page body in the document, header, navigation and messages. Logged-in pages get the
/// bar of pages; the rules pages also get the left pane of sections.
pub(crate) fn page(frame: &Frame<'_>, body: Markup) -> String {
    let logged_in = frame.csrf.is_some();
    // Who is logged in (set by the gate for this request): named in the header; a viewer's
    // pages hide what changes things (the gate refuses it anyway) and say why.
    let who = crate::gate::current().filter(|_| logged_in);
    let read_only = who.as_ref().is_some_and(|p| !p.may(crate::access::Role::Operator));
    let sections = logged_in && frame.tab == Some(Tab::Rules);
    let doc = html! {
        (DOCTYPE)
        html lang="en" {
            head {
                meta charset="utf-8";
                meta name="viewport" content="width=device-width, initial-scale=1";
                title { (frame.title) " · Ticketing · msp-ticketd" }
                link rel="stylesheet" href=(super::assets::CSS.href());
                noscript { link rel="stylesheet" href=(super::assets::NOJS_CSS.href()); }
                script src=(super::assets::JS.href()) defer {}
            }
            body class=[read_only.then_some("read-only")] {
                header.top {
                    @if sections {
                        button type="button" id="nav-toggle" class="nav-toggle" aria-controls="nav" aria-expanded="false" { "Sections" }
                    }
                    span.brand { "msp-ticketd · Ticketing" }
                    @if let Some(p) = &who {
                        span.who id="who" { (p.actor.label()) " (" (p.role) ")" }
                    }
                    @if let Some(csrf) = frame.csrf {
                        form method="post" action="/ui/logout" class="logout" data-leaves {
                            input type="hidden" name="csrf" value=(csrf);
                            button type="submit" { "Log out" }
                        }
                    }
                }
                @if logged_in {
                    (tabs(frame))
                }
                div.layout {
                    @if sections {
                        (nav(frame))
                    }
                    main id="main" {
                        @for f in frame.flash {
                            div class={ "flash " (f.kind) } role=(if f.kind == "error" { "alert" } else { "status" }) id={ "flash-" (f.kind) } {
                                p { (f.text) }
                                @if !f.details.is_empty() {
                                    ul {
                                        @for d in &f.details {
                                            li { (d) }
                                        }
                                    }
                                }
                            }
                        }
                        @if logged_in {
                            (unmapped_banner(frame.unmapped))
                        }
                        @if read_only {
                            div.banner.info role="status" id="read-only-banner" {
                                p {
                                    "You have the viewer role: you can look at every page, but changing rules, the mapping or maintenance windows needs the operator role (ask an admin). The buttons that change things are hidden."
                                }
                            }
                        }
                        (body)
                    }
                }
            }
        }
    };
    let mut out = doc.into_string();
    out.push('\n');
    out
}

/// The login form.
pub(crate) fn login(error: Option<&str>, next: Option<&str>) -> String {
    let body = html! {
        h1 { "Log in" }
        @if let Some(e) = error {
            div.flash.error role="alert" { p { (e) } }
        }
        form method="post" action="/ui/login" class="login" {
            @if let Some(n) = next {
                input type="hidden" name="next" value=(n);
            }
            p {
                label for="user" { "User name" }
                input id="user" name="user" type="text" autocomplete="username" autofocus;
            }
            p {
                label for="password" { "Password" }
                input id="password" name="password" type="password" autocomplete="current-password" required;
            }
            p { button type="submit" { "Log in" } }
        }
        p.hint {
            "Users are added with " code { "msp-ticketd users add" } ". With no user name, the password is the admin API's bearer token ("
            code { "admin.token" } " in the configuration)."
        }
    };
    page(&Frame { title: "Log in", tab: None, current: None, dirty: &[], csrf: None, flash: &[], unmapped: 0 }, body)
}

/// A page refusing a request, with its reason.
pub(crate) fn refused(text: &str) -> String {
    let body = html! {
        h1 { "Refused" }
        div.flash.error role="alert" { p { (text) } }
        p { a href="/ui" { "Back to the Ticketing tab" } }
    };
    page(&Frame { title: "Refused", tab: None, current: None, dirty: &[], csrf: None, flash: &[], unmapped: 0 }, body)
}

//! The menu: each entry with the roles that see it. A page checks its own scope through the
//! services whatever the menu shows; the menu only leaves out what a role cannot use.

use yibao_storage::Role;

/// A menu entry.
pub struct Entry {
    /// Names the page for `Chrome::active`.
    pub section: &'static str,
    pub href: &'static str,
    pub label: &'static str,
    pub roles: &'static [Role],
}

const ALL: &[Role] = &[
    Role::Admin,
    Role::StationOperator,
    Role::TaxCollector,
    Role::Auditor,
];

/// The menu, in order. Pages add their entry here.
pub static MENU: &[Entry] = &[
    Entry {
        section: "dashboard",
        href: "/console/",
        label: "首页 征缴进度",
        roles: ALL,
    },
    Entry {
        section: "persons",
        href: "/console/persons",
        label: "参保人员",
        roles: ALL,
    },
    Entry {
        section: "roster",
        href: "/console/roster",
        label: "名册导入",
        roles: &[Role::Admin, Role::StationOperator],
    },
    Entry {
        section: "assessment",
        href: "/console/assessment",
        label: "年度核定",
        roles: &[Role::Admin],
    },
    Entry {
        section: "unpaid",
        href: "/console/unpaid",
        label: "未缴名单",
        roles: ALL,
    },
    Entry {
        section: "uninsured",
        href: "/console/uninsured",
        label: "未参保名单上报",
        roles: ALL,
    },
    Entry {
        section: "applications",
        href: "/console/applications",
        label: "网上参保登记",
        roles: &[Role::Admin, Role::StationOperator],
    },
    Entry {
        section: "listing",
        href: "/console/listing",
        label: "缴费公示",
        roles: ALL,
    },
    // Desk pages (issue 16, group B).
    Entry {
        section: "refunds",
        href: "/console/refunds",
        label: "退费",
        roles: MONEY,
    },
    Entry {
        section: "payments",
        href: "/console/payments",
        label: "缴费查询",
        roles: MONEY,
    },
    Entry {
        section: "reconciliation",
        href: "/console/reconciliation",
        label: "对账",
        roles: MONEY,
    },
    Entry {
        section: "village_agents",
        href: "/console/village-agents",
        label: "村级代办",
        roles: MONEY,
    },
    Entry {
        section: "debit",
        href: "/console/debit",
        label: "银行扣费",
        roles: MONEY,
    },
    Entry {
        section: "audit",
        href: "/console/audit",
        label: "审计日志",
        roles: &[Role::Admin, Role::Auditor],
    },
    Entry {
        section: "staff",
        href: "/console/staff",
        label: "人员管理",
        roles: &[Role::Admin],
    },
    Entry {
        section: "policies",
        href: "/console/policies",
        label: "费率与日历",
        roles: ALL,
    },
    Entry {
        section: "channels",
        href: "/console/channels",
        label: "渠道",
        roles: &[Role::Admin],
    },
    Entry {
        section: "sandbox",
        href: "/console/sandbox",
        label: "接入测试",
        roles: &[Role::Admin],
    },
];

/// Who reads money matters (refunds, payments, reconciliation): never a station operator.
const MONEY: &[Role] = &[Role::Admin, Role::TaxCollector, Role::Auditor];

/// One link of the rendered menu.
pub struct Link {
    pub href: &'static str,
    pub label: &'static str,
    pub active: bool,
}

/// The menu for a role, with `section` marked as the current page.
pub fn links(role: Role, section: &str) -> Vec<Link> {
    MENU.iter()
        .filter(|e| e.roles.contains(&role))
        .map(|e| Link {
            href: e.href,
            label: e.label,
            active: e.section == section,
        })
        .collect()
}

//! Table definitions, identical for both backends (see migrations/).

pub use guildhall_jobs::schema::{background_job_schedules, background_jobs};

diesel::table! {
    users (id) {
        id -> BigInt,
        email -> Text,
        email_normalized -> Text,
        display_name -> Text,
        password_hash -> Nullable<Text>,
        can_login -> Bool,
        is_admin -> Bool,
        created_at -> Timestamp,
        updated_at -> Timestamp,
        email_verified_at -> Nullable<Timestamp>,
    }
}

diesel::table! {
    refresh_tokens (id) {
        id -> BigInt,
        user_id -> BigInt,
        family_id -> Text,
        token_hash -> Text,
        created_at -> Timestamp,
        expires_at -> Timestamp,
        used_at -> Nullable<Timestamp>,
        revoked_at -> Nullable<Timestamp>,
    }
}

diesel::table! {
    projects (id) {
        id -> BigInt,
        slug -> Text,
        name -> Text,
        repo_url -> Text,
        description -> Text,
        topics -> Text,
        currency -> Text,
        commission_bps -> Integer,
        free_share_pct -> Integer,
        min_response_hours -> Integer,
        auto_close_days -> Integer,
        guidelines -> Text,
        code_of_conduct -> Text,
        legal_entity -> Nullable<Text>,
        created_by -> BigInt,
        created_at -> Timestamp,
        updated_at -> Timestamp,
        acceptance_days -> Integer,
        notification_default -> Text,
        verified_at -> Nullable<Timestamp>,
        verified_via -> Nullable<Text>,
        github_import_visibility -> Text,
        upgrade_price -> BigInt,
        coc_version -> Integer,
        steward_id -> Nullable<BigInt>,
    }
}

diesel::table! {
    project_maintainers (project_id, user_id) {
        project_id -> BigInt,
        user_id -> BigInt,
        added_by -> Nullable<BigInt>,
        created_at -> Timestamp,
    }
}

diesel::table! {
    project_helpers (id) {
        id -> BigInt,
        project_id -> BigInt,
        user_id -> BigInt,
        tier -> Text,
        status -> Text,
        hourly_rate -> Nullable<BigInt>,
        bio -> Text,
        skills -> Text,
        decided_by -> Nullable<BigInt>,
        decided_at -> Nullable<Timestamp>,
        created_at -> Timestamp,
        updated_at -> Timestamp,
    }
}

diesel::table! {
    coc_acceptances (project_id, user_id) {
        project_id -> BigInt,
        user_id -> BigInt,
        accepted_at -> Timestamp,
        version -> Integer,
    }
}

diesel::table! {
    endorsements (id) {
        id -> BigInt,
        project_id -> BigInt,
        endorser_id -> BigInt,
        endorsee_id -> BigInt,
        created_at -> Timestamp,
    }
}

diesel::joinable!(refresh_tokens -> users (user_id));
diesel::joinable!(project_maintainers -> projects (project_id));
diesel::joinable!(project_maintainers -> users (user_id));
diesel::joinable!(project_helpers -> projects (project_id));
diesel::joinable!(project_helpers -> users (user_id));
diesel::joinable!(coc_acceptances -> projects (project_id));

diesel::table! {
    tickets (id) {
        id -> BigInt,
        project_id -> BigInt,
        requester_id -> BigInt,
        title -> Text,
        body -> Text,
        kind -> Text,
        visibility -> Text,
        status -> Text,
        tags -> Text,
        claimed_by -> Nullable<BigInt>,
        resolved_by -> Nullable<BigInt>,
        resolution_message_id -> Nullable<BigInt>,
        paid_amount -> BigInt,
        waiting_since -> Timestamp,
        last_activity_at -> Timestamp,
        submitted_at -> Nullable<Timestamp>,
        claimed_at -> Nullable<Timestamp>,
        resolved_at -> Nullable<Timestamp>,
        closed_at -> Nullable<Timestamp>,
        close_reason -> Nullable<Text>,
        rating_stars -> Nullable<Integer>,
        rating_comment -> Nullable<Text>,
        rated_at -> Nullable<Timestamp>,
        external_ref -> Nullable<Text>,
        index_version -> BigInt,
        indexed_version -> BigInt,
        created_at -> Timestamp,
        updated_at -> Timestamp,
        round -> Integer,
        upgraded_at -> Nullable<Timestamp>,
        hidden_at -> Nullable<Timestamp>,
    }
}

diesel::table! {
    ticket_events (id) {
        id -> BigInt,
        ticket_id -> BigInt,
        actor_id -> Nullable<BigInt>,
        action -> Text,
        from_status -> Nullable<Text>,
        to_status -> Text,
        reason -> Nullable<Text>,
        created_at -> Timestamp,
    }
}

diesel::table! {
    ticket_messages (id) {
        id -> BigInt,
        ticket_id -> BigInt,
        author_id -> BigInt,
        body -> Text,
        internal -> Bool,
        template_id -> Nullable<BigInt>,
        score -> Integer,
        external_ref -> Nullable<Text>,
        created_at -> Timestamp,
        via -> Text,
        hidden_at -> Nullable<Timestamp>,
    }
}

diesel::table! {
    response_templates (id) {
        id -> BigInt,
        project_id -> BigInt,
        owner_id -> Nullable<BigInt>,
        name -> Text,
        body -> Text,
        created_at -> Timestamp,
        updated_at -> Timestamp,
    }
}

diesel::joinable!(tickets -> projects (project_id));
diesel::joinable!(ticket_events -> tickets (ticket_id));
diesel::joinable!(ticket_messages -> tickets (ticket_id));
diesel::joinable!(ticket_messages -> users (author_id));
diesel::joinable!(response_templates -> projects (project_id));
diesel::allow_tables_to_appear_in_same_query!(
    appeals,
    platform_cocs,
    platform_coc_acceptances,
    consulting_bookings,
    handovers,
    plans,
    flags,
    bans,
    sla_clocks,
    billing_details,
    invoice_sequences,
    invoices,
    floss_proofs,
    subscriptions,
    subscription_periods,
    audit_log,
    project_calendars,
    chat_deliveries,
    chat_questions,
    chat_link_tokens,
    users,
    refresh_tokens,
    projects,
    project_maintainers,
    project_helpers,
    coc_acceptances,
    endorsements,
    tickets,
    ticket_events,
    ticket_messages,
    response_templates,
    ledger_accounts,
    ledger_transfers,
    bounties,
    releases,
    idempotency_keys,
    bids,
    stripe_events,
    payout_accounts,
    payouts,
    reputation_events,
    reputation_scores,
    notification_settings,
    notification_levels,
    notification_cursors,
    notifications,
    digests,
    inbound_emails,
    github_deliveries,
    github_installations,
    github_repositories,
    github_issue_links,
    user_identities,
);

diesel::table! {
    ledger_accounts (id) {
        id -> BigInt,
        code -> Text,
        kind -> Text,
        owner_id -> Nullable<BigInt>,
        currency -> Text,
        allow_negative -> Bool,
        debits_posted -> BigInt,
        credits_posted -> BigInt,
        debits_pending -> BigInt,
        credits_pending -> BigInt,
        frozen -> Bool,
        created_at -> Timestamp,
    }
}

diesel::table! {
    ledger_transfers (id) {
        id -> BigInt,
        transfer_key -> Text,
        kind -> Text,
        debit_account_id -> BigInt,
        credit_account_id -> BigInt,
        amount -> BigInt,
        currency -> Text,
        pending_id -> Nullable<BigInt>,
        pending_status -> Nullable<Text>,
        chain_key -> Nullable<Text>,
        ticket_id -> Nullable<BigInt>,
        memo -> Text,
        created_at -> Timestamp,
    }
}

diesel::table! {
    bounties (id) {
        id -> BigInt,
        ticket_id -> BigInt,
        backer_id -> BigInt,
        amount -> BigInt,
        currency -> Text,
        status -> Text,
        gateway -> Text,
        payment_id -> Nullable<Text>,
        created_at -> Timestamp,
        funded_at -> Nullable<Timestamp>,
        settled_at -> Nullable<Timestamp>,
        bid_id -> Nullable<BigInt>,
        expires_at -> Nullable<Timestamp>,
        refund_id -> Nullable<Text>,
        refunded_amount -> BigInt,
        dispute_status -> Nullable<Text>,
        disputed_amount -> BigInt,
        request_key -> Nullable<Text>,
    }
}

diesel::table! {
    releases (id) {
        id -> BigInt,
        ticket_id -> BigInt,
        helper_id -> BigInt,
        project_id -> BigInt,
        amount -> BigInt,
        currency -> Text,
        helper_amount -> BigInt,
        project_amount -> BigInt,
        platform_amount -> BigInt,
        platform_bps -> Integer,
        commission_bps -> Integer,
        created_at -> Timestamp,
        round -> Integer,
    }
}

diesel::table! {
    idempotency_keys (id) {
        id -> BigInt,
        user_id -> BigInt,
        idem_key -> Text,
        request_hash -> Text,
        status_code -> Nullable<Integer>,
        response_body -> Nullable<Text>,
        created_at -> Timestamp,
        locked_until -> Nullable<Timestamp>,
    }
}

diesel::table! {
    bids (id) {
        id -> BigInt,
        ticket_id -> BigInt,
        helper_id -> BigInt,
        amount -> BigInt,
        currency -> Text,
        eta_hours -> Integer,
        message -> Text,
        status -> Text,
        created_at -> Timestamp,
        decided_at -> Nullable<Timestamp>,
    }
}

diesel::table! {
    stripe_events (id) {
        id -> BigInt,
        event_id -> Text,
        event_type -> Text,
        outcome -> Text,
        received_at -> Timestamp,
    }
}

diesel::table! {
    payout_accounts (id) {
        id -> BigInt,
        payee_kind -> Text,
        payee_id -> BigInt,
        gateway -> Text,
        external_id -> Text,
        ready -> Bool,
        created_at -> Timestamp,
        updated_at -> Timestamp,
    }
}

diesel::table! {
    payouts (id) {
        id -> BigInt,
        ledger_account_id -> BigInt,
        payout_account_id -> BigInt,
        amount -> BigInt,
        currency -> Text,
        status -> Text,
        hold_transfer_id -> Nullable<BigInt>,
        gateway_transfer_id -> Nullable<Text>,
        attempts -> Integer,
        last_error -> Nullable<Text>,
        created_at -> Timestamp,
        paid_at -> Nullable<Timestamp>,
        ticket_id -> Nullable<BigInt>,
    }
}

diesel::table! {
    reputation_events (id) {
        id -> BigInt,
        user_id -> BigInt,
        project_id -> BigInt,
        kind -> Text,
        value -> Double,
        weight -> Double,
        ticket_id -> Nullable<BigInt>,
        source_user_id -> Nullable<BigInt>,
        dedup_key -> Text,
        occurred_at -> Timestamp,
        created_at -> Timestamp,
    }
}

diesel::table! {
    reputation_scores (user_id, project_id) {
        user_id -> BigInt,
        project_id -> BigInt,
        score -> Double,
        quality -> Double,
        trust -> Double,
        prior -> Double,
        evidence -> Double,
        outcomes -> Integer,
        endorsements -> Integer,
        answers -> Integer,
        accepted -> Integer,
        setbacks -> Integer,
        median_response_hours -> Nullable<Double>,
        computed_at -> Timestamp,
    }
}

diesel::table! {
    notification_settings (user_id) {
        user_id -> BigInt,
        level -> Text,
        digest_hour -> Integer,
        time_zone -> Text,
        updated_at -> Timestamp,
    }
}

diesel::table! {
    notification_levels (user_id, scope, scope_id) {
        user_id -> BigInt,
        scope -> Text,
        scope_id -> BigInt,
        level -> Text,
        updated_at -> Timestamp,
    }
}

diesel::table! {
    notification_cursors (channel, source) {
        channel -> Text,
        source -> Text,
        last_id -> BigInt,
    }
}

diesel::table! {
    notifications (id) {
        id -> BigInt,
        user_id -> BigInt,
        ticket_id -> BigInt,
        source -> Text,
        source_id -> BigInt,
        channel -> Text,
        status -> Text,
        summary -> Text,
        happened_at -> Timestamp,
        created_at -> Timestamp,
        sent_at -> Nullable<Timestamp>,
    }
}

diesel::table! {
    inbound_emails (id) {
        id -> BigInt,
        message_key -> Text,
        outcome -> Text,
        sender -> Text,
        answered_to -> Nullable<Text>,
        ticket_id -> BigInt,
        user_id -> BigInt,
        message_id -> Nullable<BigInt>,
        received_at -> Timestamp,
    }
}

diesel::table! {
    github_deliveries (delivery_id) {
        delivery_id -> Text,
        body_sha256 -> Text,
        event -> Text,
        received_at -> Timestamp,
    }
}

diesel::table! {
    github_installations (id) {
        id -> BigInt,
        account_login -> Text,
        account_id -> BigInt,
        installed_by -> BigInt,
        created_at -> Timestamp,
        removed_at -> Nullable<Timestamp>,
    }
}

diesel::table! {
    github_repositories (id) {
        id -> BigInt,
        node_id -> Text,
        full_name -> Text,
        installation_id -> Nullable<BigInt>,
        project_id -> Nullable<BigInt>,
        updated_at -> Timestamp,
    }
}

diesel::table! {
    github_issue_links (issue_node_id) {
        issue_node_id -> Text,
        ticket_id -> BigInt,
        repository_id -> BigInt,
        issue_number -> BigInt,
        bot_comment_id -> Nullable<BigInt>,
        withdrawn_at -> Nullable<Timestamp>,
        created_at -> Timestamp,
        updated_at -> Timestamp,
    }
}

diesel::table! {
    user_identities (provider, external_id) {
        provider -> Text,
        external_id -> Text,
        user_id -> BigInt,
        login -> Text,
        created_at -> Timestamp,
    }
}

diesel::table! {
    digests (user_id, local_date) {
        user_id -> BigInt,
        local_date -> Date,
        created_at -> Timestamp,
    }
}

diesel::table! {
    chat_deliveries (provider, delivery_id) {
        provider -> Text,
        delivery_id -> Text,
        received_at -> Timestamp,
    }
}

diesel::table! {
    chat_questions (id) {
        id -> BigInt,
        provider -> Text,
        external_user -> Text,
        login -> Text,
        project_id -> BigInt,
        question -> Text,
        ticket_id -> Nullable<BigInt>,
        user_id -> Nullable<BigInt>,
        solved_at -> Nullable<Timestamp>,
        created_at -> Timestamp,
    }
}

diesel::table! {
    chat_link_tokens (token_hash) {
        token_hash -> Text,
        provider -> Text,
        external_user -> Text,
        login -> Text,
        expires_at -> Timestamp,
        used_at -> Nullable<Timestamp>,
    }
}

diesel::table! {
    project_calendars (project_id) {
        project_id -> BigInt,
        time_zone -> Text,
        working_days -> Text,
        start_minute -> Integer,
        end_minute -> Integer,
        holidays -> Text,
        updated_at -> Timestamp,
    }
}

diesel::table! {
    audit_log (id) {
        id -> BigInt,
        actor_id -> Nullable<BigInt>,
        action -> Text,
        target_type -> Text,
        target_id -> Nullable<BigInt>,
        detail -> Text,
        created_at -> Timestamp,
    }
}

diesel::table! {
    plans (id) {
        id -> BigInt,
        project_id -> BigInt,
        kind -> Text,
        name -> Text,
        price -> BigInt,
        currency -> Text,
        included_upgrades -> Integer,
        upgrade_price -> Nullable<BigInt>,
        consulting_hours -> Integer,
        response_hours -> Nullable<Integer>,
        term_months -> Integer,
        floss_discount_pct -> Integer,
        service_credit_pct -> Integer,
        created_by -> BigInt,
        created_at -> Timestamp,
    }
}

diesel::table! {
    subscriptions (id) {
        id -> BigInt,
        plan_id -> BigInt,
        project_id -> BigInt,
        subscriber_id -> BigInt,
        context -> Text,
        monthly_price -> BigInt,
        currency -> Text,
        discount_pct -> Integer,
        platform_bps -> Integer,
        status -> Text,
        gateway -> Text,
        current_period -> Integer,
        period_start -> Nullable<Timestamp>,
        period_end -> Nullable<Timestamp>,
        grace_until -> Nullable<Timestamp>,
        cancel_at_period_end -> Bool,
        request_key -> Nullable<Text>,
        created_at -> Timestamp,
        ended_at -> Nullable<Timestamp>,
        gateway_subscription_id -> Nullable<Text>,
        gateway_customer_id -> Nullable<Text>,
        gateway_discounted -> Bool,
        gateway_credit_outstanding -> BigInt,
    }
}

diesel::table! {
    subscription_periods (id) {
        id -> BigInt,
        subscription_id -> BigInt,
        number -> Integer,
        starts_at -> Timestamp,
        ends_at -> Timestamp,
        amount -> BigInt,
        status -> Text,
        payment_id -> Nullable<Text>,
        project_amount -> BigInt,
        platform_amount -> BigInt,
        upgrades_granted -> Integer,
        consulting_minutes_granted -> Integer,
        created_at -> Timestamp,
        paid_at -> Nullable<Timestamp>,
        refund_id -> Nullable<Text>,
        credit_applied -> BigInt,
        gateway_invoice_id -> Nullable<Text>,
    }
}

diesel::table! {
    floss_proofs (user_id) {
        user_id -> BigInt,
        github_login -> Text,
        repository -> Text,
        license -> Text,
        permission -> Text,
        verified_at -> Timestamp,
        checked_at -> Timestamp,
    }
}

diesel::table! {
    sla_clocks (id) {
        id -> BigInt,
        ticket_id -> BigInt,
        subscription_id -> BigInt,
        kind -> Text,
        started_at -> Timestamp,
        warn_at -> Timestamp,
        due_at -> Timestamp,
        warned_at -> Nullable<Timestamp>,
        breached_at -> Nullable<Timestamp>,
        closed_at -> Nullable<Timestamp>,
        closed_reason -> Nullable<Text>,
        credit_amount -> BigInt,
        currency -> Text,
    }
}

diesel::table! {
    billing_details (user_id) {
        user_id -> BigInt,
        name -> Text,
        address -> Text,
        vat_id -> Nullable<Text>,
        updated_at -> Timestamp,
    }
}

diesel::table! {
    invoice_sequences (project_id) {
        project_id -> BigInt,
        last_number -> BigInt,
    }
}

diesel::table! {
    invoices (id) {
        id -> BigInt,
        project_id -> BigInt,
        number -> BigInt,
        kind -> Text,
        buyer_id -> BigInt,
        seller -> Text,
        buyer -> Text,
        lines -> Text,
        total -> BigInt,
        currency -> Text,
        origin -> Text,
        source -> Text,
        corrects_id -> Nullable<BigInt>,
        issued_at -> Timestamp,
    }
}

diesel::table! {
    consulting_bookings (id) {
        id -> BigInt,
        subscription_id -> BigInt,
        project_id -> BigInt,
        requester_id -> BigInt,
        period_number -> Integer,
        minutes -> Integer,
        topic -> Text,
        preferred_at -> Nullable<Timestamp>,
        status -> Text,
        scheduled_at -> Nullable<Timestamp>,
        returned -> Bool,
        decided_by -> Nullable<BigInt>,
        created_at -> Timestamp,
        updated_at -> Timestamp,
    }
}

diesel::table! {
    platform_cocs (version) {
        version -> Integer,
        body -> Text,
        created_by -> Nullable<BigInt>,
        created_at -> Timestamp,
    }
}

diesel::table! {
    platform_coc_acceptances (user_id) {
        user_id -> BigInt,
        version -> Integer,
        accepted_at -> Timestamp,
    }
}

diesel::table! {
    appeals (id) {
        id -> BigInt,
        ban_id -> BigInt,
        user_id -> BigInt,
        message_ref -> Text,
        body -> Text,
        status -> Text,
        decided_by -> Nullable<BigInt>,
        decided_at -> Nullable<Timestamp>,
        note -> Nullable<Text>,
        created_at -> Timestamp,
    }
}

diesel::table! {
    handovers (id) {
        id -> BigInt,
        project_id -> BigInt,
        from_user_id -> BigInt,
        to_user_id -> BigInt,
        effective_at -> Timestamp,
        status -> Text,
        failure -> Nullable<Text>,
        repo_verified_at -> Nullable<Timestamp>,
        prev_steward_id -> Nullable<BigInt>,
        to_was_maintainer -> Bool,
        created_at -> Timestamp,
        accepted_at -> Nullable<Timestamp>,
        applied_at -> Nullable<Timestamp>,
        reversed_at -> Nullable<Timestamp>,
        reversed_by -> Nullable<BigInt>,
    }
}

diesel::table! {
    flags (id) {
        id -> BigInt,
        target_type -> Text,
        target_id -> BigInt,
        project_id -> BigInt,
        flagger_id -> BigInt,
        reason -> Text,
        note -> Nullable<Text>,
        weight -> Integer,
        status -> Text,
        reviewed_by -> Nullable<BigInt>,
        reviewed_at -> Nullable<Timestamp>,
        created_at -> Timestamp,
    }
}

diesel::table! {
    bans (id) {
        id -> BigInt,
        project_id -> Nullable<BigInt>,
        user_id -> BigInt,
        reason -> Text,
        until -> Nullable<Timestamp>,
        created_by -> BigInt,
        created_at -> Timestamp,
        lifted_at -> Nullable<Timestamp>,
        lifted_by -> Nullable<BigInt>,
    }
}

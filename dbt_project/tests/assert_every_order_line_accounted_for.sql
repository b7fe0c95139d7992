-- Nothing is silently dropped, both ways. Every order line read is kept, a return netted, or
-- quarantined; every customer of customer_features is one of the customer table or of the
-- order lines, and every customer of either table is in customer_features. Returns a row
-- when that fails.
with

lines_in_source as (

    select
        (select count(*) from {{ source('raw', 'orders') }})
        + (select count(*) from {{ source('raw', 'orders_rejected') }}) as lines

),

summary as (

    select
        sum(case when item = 'lines_read' then rows end) as lines_read,
        sum(case when item in ('lines_kept', 'returns_netted', 'lines_quarantined') then rows end) as lines_accounted,
        sum(case when section = 'quarantine' then rows end) as lines_by_reason,
        sum(case when item = 'lines_quarantined' then rows end) as lines_quarantined

    from {{ ref('order_quality_summary') }}

),

customers as (

    select
        (select count(*) from {{ ref('customer_features') }}) as in_features,
        (select count(*) from {{ ref('int_customers_imputed') }}) as in_customer_table,
        (select count(*) from {{ ref('customer_orders') }}) as with_orders,
        (select count(*) from {{ ref('int_customers_joined') }} where has_attributes and not has_orders) as without_orders,
        (select count(*) from {{ ref('int_customers_joined') }} where has_orders and not has_attributes) as orders_only

),

checks as (

    select
        lines_in_source.lines,
        summary.lines_read,
        summary.lines_accounted,
        customers.in_features,
        customers.in_customer_table + customers.orders_only as from_customer_side,
        customers.with_orders + customers.without_orders as from_order_side,
        coalesce(summary.lines_by_reason, 0) as lines_by_reason,
        summary.lines_quarantined

    from lines_in_source
    cross join summary
    cross join customers

)

select * from checks
where lines <> lines_read
    or lines_read <> lines_accounted
    or lines_by_reason <> lines_quarantined
    or in_features <> from_customer_side
    or in_features <> from_order_side

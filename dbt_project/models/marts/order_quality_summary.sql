{#- Where every order line went, and how the two tables met: lines read = lines kept +
    returns netted + lines quarantined (by reason); customers with orders, customers of
    the customer table without any order, customers found in the order lines only; the
    reference date recency is counted from (in `detail`). No rows are needed to read it:
    without order lines every count is 0. -#}
{%- set customer_table = declaration().customer_table -%}

with

order_lines as (

    select * from {{ ref('int_orders_validated') }}

),

customers as (

    select * from {{ ref('int_customers_joined') }}

),

accounting as (

    select 'accounting' as section, 'lines_read' as item, count(*) as rows, 1 as item_order
    from order_lines
    union all
    select 'accounting', 'lines_kept', count(case when quarantine_reason is null and not is_return then 1 end), 2
    from order_lines
    union all
    select 'accounting', 'returns_netted', count(case when quarantine_reason is null and is_return then 1 end), 3
    from order_lines
    union all
    select 'accounting', 'lines_quarantined', count(quarantine_reason), 4
    from order_lines

),

quarantine_reasons as (

    select 'quarantine' as section, quarantine_reason as item, count(*) as rows, 10 as item_order
    from order_lines
    where quarantine_reason is not null
    group by quarantine_reason

),

customer_counts as (

    select 'customers' as section, 'customers_with_orders' as item, count(case when has_orders then 1 end) as rows,
        20 as item_order
    from customers
    union all
    select 'customers', 'customers_without_orders',
        count(case when {{ 'not has_orders' if customer_table else 'false' }} then 1 end), 21
    from customers
    union all
    select 'customers', 'customers_in_orders_only',
        count(case when {{ 'not has_attributes' if customer_table else 'false' }} then 1 end), 22
    from customers

),

unioned as (

    select section, item, rows, item_order, cast(null as {{ dbt.type_string() }}) as detail from accounting
    union all
    select section, item, rows, item_order, cast(null as {{ dbt.type_string() }}) from quarantine_reasons
    union all
    select section, item, rows, item_order, cast(null as {{ dbt.type_string() }}) from customer_counts
    union all
    select 'reference', 'as_of', 0, 30, cast(max(as_of) as {{ dbt.type_string() }})
    from order_lines

),

final as (

    select
        section,
        item,
        cast(rows as bigint) as rows,
        detail,
        cast(row_number() over (order by item_order, rows desc, item) as bigint) as display_order

    from unioned

)

select * from final

{#- Every order line with `quarantine_reason` (NULL for a usable line, else the first rule
    it breaks) and, for usable lines, whether it is a return: a negative quantity or amount,
    or an order id starting with the declared cancellation prefix. Returns are kept, to be
    netted against purchases; exact duplicate lines are quarantined (counted, never dropped
    silently). -#}
{%- set orders = order_roles() -%}
{%- set prefix = orders.cancelled_prefix if orders else '' -%}

with

order_lines as (

    select * from {{ ref('stg_orders') }}

),

rejected_lines as (

    select * from {{ ref('stg_orders_rejected') }}

),

reference_date as (

    select {{ orders_reference_date('order_date') }} as as_of
    from order_lines

),

first_copies as (

    -- the first line of each set of identical lines (NULLs equal, as in any group by): an
    -- aggregate over the keys and the line number, where a window would carry every column
    select min(source_row_number) as source_row_number
    from order_lines
    group by
        {%- for key in order_role_keys() %}
        {{ key }}__text{{ "," if not loop.last }}
        {%- endfor %}

),

valued as (

    select
        order_lines.*,
        reference_date.as_of,
        {%- if orders.amount %}
        amount as line_value,
        {%- else %}
        quantity * unit_price as line_value,
        {%- endif %}
        (
            coalesce(quantity < 0, false)
            or coalesce(amount < 0, false)
            {%- if prefix %}
            or coalesce(substr(order_id, 1, {{ prefix | length }}) = {{ sql_string(prefix) }}, false)
            {%- endif %}
        ) as is_return,
        first_copies.source_row_number is null as is_later_copy

    from order_lines
    cross join reference_date
    left join first_copies
        on order_lines.source_row_number = first_copies.source_row_number

),

validated as (

    select
        *,
        case
            when coalesce(
                {%- for key in order_role_keys() %}
                {{ key }}__text{{ "," if not loop.last }}
                {%- endfor %}
            ) is null then 'empty_row'
            when customer_id is null then 'missing_customer_id'
            when order_id is null then 'missing_order_id'
            when order_date is null and date__text is null then 'missing_date'
            when order_date is null then 'unparseable_date'
            {%- if orders.amount %}
            when amount is null and amount__text is null then 'missing_amount'
            when amount is null then 'unparseable_amount'
            when amount = 0 then 'zero_amount'
            {%- else %}
            when quantity is null and quantity__text is null then 'missing_quantity'
            when quantity is null then 'unparseable_quantity'
            when unit_price is null and price__text is null then 'missing_price'
            when unit_price is null then 'unparseable_price'
            when unit_price <= 0 then 'non_positive_price'
            when quantity = 0 then 'zero_quantity'
            {%- endif %}
            when order_date > as_of
                or order_date < {{ dbt.dateadd('year', -30, 'as_of') }} then 'date_out_of_range'
            when is_later_copy then 'duplicate_line'
        end as quarantine_reason

    from valued

),

final as (

    select
        source_row_number,
        customer_id,
        order_id,
        order_date,
        quantity,
        unit_price,
        line_value,
        category,
        channel,
        country,
        product,
        is_return,
        as_of,
        quarantine_reason,
        case quarantine_reason
            when 'missing_customer_id' then customer__text
            when 'missing_order_id' then order__text
            when 'missing_date' then date__text
            when 'unparseable_date' then date__text
            when 'date_out_of_range' then date__text
            when 'unparseable_amount' then amount__text
            when 'zero_amount' then amount__text
            when 'unparseable_quantity' then quantity__text
            when 'zero_quantity' then quantity__text
            when 'unparseable_price' then price__text
            when 'non_positive_price' then price__text
            when 'duplicate_line' then concat(order__text, ' / ', coalesce(product__text, ''), ' / ', coalesce(date__text, ''))
        end as source_value,
        cast(null as {{ dbt.type_string() }}) as source_line

    from validated

    union all

    select
        source_row_number,
        cast(null as {{ dbt.type_string() }}),
        cast(null as {{ dbt.type_string() }}),
        cast(null as date),
        cast(null as double),
        cast(null as double),
        cast(null as double),
        cast(null as {{ dbt.type_string() }}),
        cast(null as {{ dbt.type_string() }}),
        cast(null as {{ dbt.type_string() }}),
        cast(null as {{ dbt.type_string() }}),
        false,
        cast(null as date),
        'malformed_row',
        source_line,
        source_line

    from rejected_lines

)

select * from final

{#- Every order line with `quarantine_reason` (NULL for a usable line, else the first rule
    it breaks) and, for usable lines, whether it is a return: a negative quantity or amount,
    or an order id starting with the declared cancellation prefix. Returns are kept, to be
    netted against purchases; exact duplicate lines are quarantined (counted, never dropped
    silently). -#}
{%- set orders = order_roles() -%}
{%- set prefix = orders.cancelled_prefix if orders else '' -%}
{%- set key_texts = [] -%}
{%- for key in order_role_keys() %}{% do key_texts.append(key ~ '__text') %}{% endfor -%}

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

line_keys as (

    -- identical lines have the same hash; lines of a hash seen once are unique, so only the
    -- few sharing a hash are compared column by column (a hash shared by different lines is
    -- told apart there): grouping every line by its ten texts cost most of this model
    select
        source_row_number,
        {{ row_hash(key_texts) }} as key_hash

    from order_lines

),

repeated_hashes as (

    select key_hash
    from line_keys
    group by key_hash
    having count(*) > 1

),

candidate_lines as (

    select line_keys.source_row_number
    from line_keys
    where line_keys.key_hash in (select repeated_hashes.key_hash from repeated_hashes)

),

first_copies as (

    -- the first line of each set of identical lines (NULLs equal, as in any group by): an
    -- aggregate over the keys and the line number, where a window would carry every column
    select min(source_row_number) as source_row_number
    from order_lines
    where source_row_number in (select candidate_lines.source_row_number from candidate_lines)
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
        (
            first_copies.source_row_number is null
            and order_lines.source_row_number in (select candidate_lines.source_row_number from candidate_lines)
        ) as is_later_copy

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
